"""The web pages: one blueprint per feature (auth, sessions, search, export, device,
admin) and the helpers they share.
"""
