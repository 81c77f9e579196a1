"""The Socket.IO listener (port 7000): `/logs`, `/admin`, `/health`, `/stats`."""
