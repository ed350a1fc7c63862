"""The overnight transcription: the job, the windowed audio reader, the Whisper
adapter, speaker labels, checkpoints and the `holdnote transcribe` commands.
"""
