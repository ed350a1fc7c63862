"""The SQLite database: schema and migrations, sessions, the session states and the one
function that moves a session between them.
"""
