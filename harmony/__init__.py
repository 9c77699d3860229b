"""Harmony: follows Spotify artists and playlists and fetches their music through slskd."""

__version__ = "0.1.0"
