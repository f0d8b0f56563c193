"""The file names of an SAE export folder, shared by the writer (`SAE.save_pretrained`) and the
loader (`sae/hub.py`) without either importing the other."""

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
WEIGHTS_SHA256 = "weights_sha256"
"""`CFG_FILE` field: SHA-256 of `WEIGHTS_FILE`, checked on load."""
