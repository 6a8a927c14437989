"""Law files: a hyperparameter or critical-batch law named by preset or read from its JSON file.

A law never reads files (``laws/``: science only). Here a file is read and verified once
(``util/jsonio.read_checked_json_file``: its schema version and checksum, an edited file refused
unless ``allow_edited``), and the law is built from the parsed document by the law's own
``from_dict``; what the check has to tell (an edit loaded anyway, an earlier release's file) rides
on the law as ``file_notes``. ``write_law_file`` is the way back.
"""
from __future__ import annotations

from pathlib import Path

from scalinglab.laws.critical_batch import KAPLAN_CRITICAL_BATCH, CriticalBatchLaw, find_critical_batch_law
from scalinglab.laws.hparams import HPARAM_LAWS, HparamLaw, find_hparam_law
from scalinglab.util.errors import ParamError, ParamText
from scalinglab.util.jsonio import EditedFileError, read_checked_json_file

__all__ = ["get_hparam_law", "get_critical_batch_law", "write_law_file"]


def get_hparam_law(name_or_path, *, allow_edited: bool = False) -> HparamLaw:
    """A preset by name (``stepLaw``, ``deepseek``), an HparamLaw, or a fitted law's JSON file
    (``scalinglab hparams fit ... -o hp.json``), checked as ``util/jsonio.verify_document`` says
    (an edited file refused unless ``allow_edited``; the law's ``file_notes`` say what to tell)."""
    law = find_hparam_law(name_or_path)
    if law is not None:
        return law
    key = str(name_or_path)
    path = Path(key)
    if path.suffix.lower() == ".json" or path.exists():
        if not path.is_file():
            raise ParamError("hparams_law", f"{{hparams_law}} {key}: no such file; give a preset "
                             f"({', '.join(HPARAM_LAWS)}) or a fitted law's JSON (`scalinglab hparams fit sweep.csv "
                             "-o hp.json`)", value=key)
        return _read_law_file(HparamLaw, path, "hparams_law", allow_edited)
    raise ParamError("hparams_law", f"{{hparams_law}} {key!r}: unknown; give a preset ({', '.join(HPARAM_LAWS)}) "
                     "or a fitted law's JSON file (`scalinglab hparams fit sweep.csv -o hp.json`)", value=key)


def get_critical_batch_law(name_or_path, *, allow_edited: bool = False) -> CriticalBatchLaw:
    """``kaplan`` (the preset), a CriticalBatchLaw, or a fitted law's JSON file, checked as
    ``util/jsonio.verify_document`` says (an edited file refused unless ``allow_edited``)."""
    law = find_critical_batch_law(name_or_path)
    if law is not None:
        return law
    key = str(name_or_path)
    path = Path(key)
    if not path.is_file():
        raise ParamError("critical_batch", f"{{critical_batch}} {key}: neither the preset "
                         f"'{KAPLAN_CRITICAL_BATCH.name}' nor a file; fit one with `scalinglab hparams critical-batch "
                         "curves.csv --target-loss ... -o cb.json`", value=key)
    return _read_law_file(CriticalBatchLaw, path, "critical_batch", allow_edited)


def _read_law_file(law_class, path: Path, param: str, allow_edited: bool):
    """``law_class`` built from the verified document at ``path``, carrying what the check has to tell;
    a file refused is a ParamError of ``param``, the parameter that named it."""
    try:
        doc, notes = read_checked_json_file(path, str(path), allow_edited=allow_edited)
    except EditedFileError as exc:       # still an edited file, now named by the parameter that read it
        raise EditedFileError(ParamText("{" + param + "} ", param) + exc.text, param, value=str(path)) from None
    except ParamError as exc:            # keeps the parameters it names (an edited file: allow_edited)
        raise ParamError(param, ParamText("{" + param + "} ", param) + exc.text, value=str(path),
                         also=exc.params) from None
    except ValueError as exc:
        raise ParamError(param, ParamText("{" + param + "} ", param) + str(exc), value=str(path)) from None
    law = law_class.from_dict(doc, source=str(path))
    law.file_notes = notes
    return law


def write_law_file(law: CriticalBatchLaw, path) -> str:
    """Write ``law.to_json()`` (schema version and checksum) to ``path``, for ``get_critical_batch_law``
    to read back; returns the text."""
    text = law.to_json()
    Path(path).write_text(text)
    return text
