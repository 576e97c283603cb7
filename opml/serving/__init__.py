"""The scoring web service of one deployment: FastAPI on uvicorn, Azure ML's scoring contract."""
