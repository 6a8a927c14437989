"""--allow-edited: one option for every command that reads a file scalinglab wrote (a fit, a
hyperparameter or critical-batch law, a schedule or loss-to-loss fit).

Such a file carries a checksum (``util/jsonio``); one changed after it was written is refused,
naming the first changed key, unless --allow-edited: then it is used, and every panel the
command prints says so (``render.add_file_notes``).  Values no file can hold (a level outside
(0, 1), a negative width) are refused either way.
"""
from __future__ import annotations

import typer

ALLOW_EDITED_HELP = ("Use a fit or law file that was changed after scalinglab wrote it (its checksum no longer "
                     "matches), with a WARNING on every panel; impossible values (a level outside (0, 1), a "
                     "negative width) are refused all the same.")
AllowEditedOpt = typer.Option(False, "--allow-edited", help=ALLOW_EDITED_HELP)
