"""gunicorn settings for the Holdnote web page (command-line flags add bind, TLS, workers).

gunicorn faces browsers directly, with no proxy in front, so it must not
believe any forwarding header: the app decides on the real peer address.
"""

# Threads let a worker answer the device page's status polling while another
# request (a login doing key derivation) is busy. gunicorn's gthread, except
# that the event loop does the TLS handshake with a time limit, so silent
# connections cannot occupy the threads (see worker.py).
worker_class = "web_ui.serving.worker.HandshakeWorker"
threads = 4
# Open connections per worker, handshaking ones included (each closes within
# 10 s unless it completes): kept below the service's 1,024 file descriptors.
worker_connections = 800
# Unlocking derives a key with scrypt (about a second on a Raspberry Pi 4).
timeout = 60
graceful_timeout = 20
keepalive = 5
# Trust no X-Forwarded-* or PROXY headers from anyone.
forwarded_allow_ips = ""
proxy_allow_ips = ""
secure_scheme_headers: dict = {}
# No gunicornc control socket: it would live in the service user's home,
# which the unit makes read-only, and nothing here uses it.
control_socket_disable = True
# Request limits well above any form the page sends.
limit_request_line = 8190
limit_request_fields = 100
# The access log shows paths (session ids) but never query strings with search terms.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


def ssl_context(config, default_ssl_context_factory):
    """TLS 1.2 or newer only (every browser a practice uses speaks it); no session tickets."""
    import ssl

    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # A TLS 1.3 server sends its session tickets with the first read after the
    # handshake. When the client has already gone (a browser's spare connection, a
    # certificate check), that write fails with EPIPE, and on trixie (Python 3.13,
    # OpenSSL 3.5) the failure stays with the worker thread: a later form POST on a
    # healthy connection then failed reading its body ("ClientDisconnected", a
    # generic 400), in up to 63 of 100 requests measured. Without tickets nothing is
    # written after the handshake; a browser reconnecting on the LAN does a full
    # handshake (a few milliseconds) instead of resuming.
    context.num_tickets = 0
    return context
