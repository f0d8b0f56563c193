"""File writing every stage shares (atomic replace), free of any other saelight import."""

from saelight.io.atomic import atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_text"]
