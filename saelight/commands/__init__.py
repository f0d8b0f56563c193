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


def unknown_verb_line(name: str, verbs: list[str]) -> str:
    """One line for a command that is not one of `verbs`, naming the nearest one (a typo, not a
    need for the whole usage)."""
    import difflib

    near = difflib.get_close_matches(name.replace("_", "-"), verbs, n=1, cutoff=0.5)
    guess = f"did you mean `saelight {near[0]}`? " if near else ""
    return f"unknown command {name!r}: {guess}(`saelight --help` lists {', '.join(verbs)})"
