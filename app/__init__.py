"""Beacon: human-in-the-loop LangGraph workflows with a live Socket.IO console."""
