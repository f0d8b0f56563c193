"""SAE architectures behind one interface (`SAE`: encode / decode / forward) and their schedules.

Importing this package registers every architecture in `SAE.registry`, which `SAE.from_pretrained`
uses to rebuild an exported SAE from its `cfg.json`. The TopK family shares `topk_family.py`;
`spec.py` builds a `model.saes` entry at a grid sparsity; `saelens.py` holds the SAELens fields.
"""

from saelight.sae.base import SAE, SAEOutput
from saelight.sae.batchtopk import BatchTopKSAE
from saelight.sae.hierarchical import HierarchicalTopKSAE
from saelight.sae.jumprelu import JumpReLUSAE
from saelight.sae.relu import ReLUSAE
from saelight.sae.topk import TopKSAE

__all__ = [
    "SAE",
    "SAEOutput",
    "TopKSAE",
    "BatchTopKSAE",
    "ReLUSAE",
    "JumpReLUSAE",
    "HierarchicalTopKSAE",
]
