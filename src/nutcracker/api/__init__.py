"""The control plane: a FastAPI service over the engine's read models and its one door, ``submit``."""
