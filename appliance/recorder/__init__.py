"""The recorder daemon: audio capture (PyAudio), buttons and LEDs (gpiozero), one
recording session, crash recovery, ending sessions when the disk fails them (closing,
reserve) and the control socket.
"""
