"""Gradio pages, kept apart from the retrieval core (qa/) and the feedback core (feedback/)."""
