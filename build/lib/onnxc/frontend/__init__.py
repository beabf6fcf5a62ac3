from .load import import_model, load_model

__all__ = ["import_model", "load_model"]
