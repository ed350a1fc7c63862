"""Who may read: the practice identity and its key slots, logins, failed-login delays,
the audit log, the one-time setup code.
"""
