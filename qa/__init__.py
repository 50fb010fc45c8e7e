"""Retrieval and answering core: knows nothing of Gradio or Label Studio."""
