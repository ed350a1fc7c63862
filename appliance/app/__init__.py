"""The `holdnote` command and the demo: the only code that imports both the device
(appliance) and the web UI (web_ui).
"""
