"""The recorder daemon: audio capture (PyAudio), buttons and LEDs (gpiozero), one
recording session, crash recovery and the control socket.
"""
