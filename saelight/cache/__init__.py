"""The activation cache: format, writer, reader and the extraction recipe."""

from saelight.cache.build import ActivationCache
from saelight.cache.format import TEST_HEAD, CacheCorruptError, CacheMismatchError
from saelight.cache.reader import CacheReader

__all__ = [
    "TEST_HEAD",
    "ActivationCache",
    "CacheCorruptError",
    "CacheMismatchError",
    "CacheReader",
]
