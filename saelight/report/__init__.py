"""The report: merge runs' results, tables, the paper's claims, figures, W&B upload."""
