"""`seq2text serve`: the HTTP server (server.py: `create_app`, `ServeConfig`, `serve`) and its batchers."""
