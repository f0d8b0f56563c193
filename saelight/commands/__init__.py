"""One module per `saelight` verb: parse a typed signature, call the packages below, print.

Nothing in saelight imports this package but `saelight/cli.py`; its modules are imported only
when their verb runs, so `saelight --help` loads neither Lightning nor transformers.
"""

TRAINER_COMMANDS = {
    "fit": "train the SAE grid (builds the activation cache first when it is missing)",
    "validate": "score a checkpoint's SAEs on the validation split",
    "test": "score a finished run's SAEs on the test split (results.json, report)",
}
"""LightningCLI's verbs (`saelight.commands.train`): name -> help line."""
