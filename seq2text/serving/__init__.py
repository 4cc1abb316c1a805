"""`seq2text serve`: the HTTP server and its batchers.

    server.py     the FastAPI app (`create_app`), its configuration (`ServeConfig`) and `serve`
    batching.py   the dynamic, continuous and multi-process batchers (nothing of the HTTP side)
"""
