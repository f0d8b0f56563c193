"""Held-out evaluation of a trained layer, the results-row schema, and the layer sweep."""
