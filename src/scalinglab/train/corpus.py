"""Token files for training: ``prepare_corpus`` writes them, ``TokenData`` serves batches.

On disk a corpus is two files:

* ``corpus.bin``: one flat array of token ids (uint16 when the vocabulary fits, else uint32),
  the training documents first, then the validation documents; every document ends with the
  end-of-text id (``eos_id``) so documents never run into each other unmarked;
* ``corpus.bin.json``: the sidecar (tokenizer, vocab size, dtype, ``n_train`` / ``n_val``
  tokens, document counts, sources), read back by ``load_corpus_info``.

The train/validation split is BY DOCUMENT and deterministic: a document goes to validation when
a hash of (seed, its content) falls below ``val_fraction``, so the split does not depend on file
order and a duplicated document can never sit on both sides (documents are also deduplicated by
content hash). Torch-free: ``scalinglab data prepare`` does not need the ``train`` extra beyond
``tokenizers`` for BPE.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sysconfig
import tempfile
import warnings
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

__all__ = ["CorpusInfo", "CorpusError", "prepare_corpus", "load_corpus_info", "synthetic_corpus",
           "markov_entropy_rate", "epochs_for", "repetition_warning", "TokenData",
           "default_corpus_files", "DEFAULT_MAX_BYTES", "check_trainable", "split_problem"]

DEFAULT_MAX_BYTES = 50_000_000          # cap on the built-in corpus (bytes of UTF-8 text)
TEXT_SUFFIXES = (".txt", ".md", ".py", ".rst", ".text")
SUFFIXES = TEXT_SUFFIXES + (".jsonl", ".parquet")
EOS_TOKEN = "<|endoftext|>"
_EOS_CANDIDATES = (EOS_TOKEN, "</s>", "<eos>", "<|end_of_text|>", "[SEP]")


class CorpusError(ValueError):
    """Bad corpus input; the message names the file or option and what would be valid."""


@dataclass
class CorpusInfo:
    path: str                  # the token file
    tokenizer: str             # "byte", "bpe" (its JSON beside the token file), a JSON path, "synthetic"
    vocab_size: int
    eos_id: int | None
    dtype: str                 # "uint16" | "uint32"
    n_train: int               # tokens
    n_val: int
    n_documents: int
    n_val_documents: int
    n_duplicates: int = 0      # documents dropped as exact duplicates
    n_bytes: int = 0           # UTF-8 bytes of text read
    sources: list[str] = field(default_factory=list)
    tokenizer_file: str | None = None
    entropy_floor: float | None = None   # nats/token, synthetic corpora only (see synthetic_corpus)
    seed: int = 0

    @property
    def n_tokens(self) -> int:
        return self.n_train + self.n_val

    def summary(self) -> str:
        return (f"{self.n_tokens:,} tokens ({self.n_train:,} train, {self.n_val:,} validation) from "
                f"{self.n_documents:,} documents, tokenizer {self.tokenizer}, vocab {self.vocab_size:,}")


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def load_corpus_info(path: str | Path) -> CorpusInfo:
    path = Path(path)
    meta = sidecar_path(path)
    if not path.exists():
        raise CorpusError(f"corpus file {path} does not exist; create one with "
                          f"`scalinglab data prepare FILES -o {path}`")
    if not meta.exists():
        raise CorpusError(f"corpus sidecar {meta} is missing; {path} must be written by "
                          "`scalinglab data prepare` (token file + JSON sidecar)")
    rebuild = _rebuild_hint(path)
    try:
        d = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:          # JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = exc.strerror if isinstance(exc, OSError) else getattr(exc, "msg", None) or "not UTF-8 text"
        raise CorpusError(f"corpus sidecar {meta} is not readable JSON ({why}); {rebuild}") from None
    problem = _sidecar_problem(d)
    if problem:
        raise CorpusError(f"corpus sidecar {meta} {problem}; {rebuild}")
    d["path"] = str(path)
    info = CorpusInfo(**{k: v for k, v in d.items() if k in CorpusInfo.__dataclass_fields__})
    itemsize = np.dtype(info.dtype).itemsize
    expected, size = info.n_tokens * itemsize, path.stat().st_size
    if size != expected:
        raise CorpusError(f"corpus file {path} is {size:,} bytes, but its sidecar {meta} describes "
                          f"{info.n_tokens:,} {info.dtype} tokens ({itemsize} bytes each): {expected:,} bytes; "
                          f"the token file is {'truncated' if size < expected else 'longer than written'} "
                          f"or was changed after it was prepared; {rebuild}")
    return info


# sidecar fields every corpus has, and the check each value must pass
_COUNT_FIELDS = ("vocab_size", "n_train", "n_val", "n_documents", "n_val_documents")
_DTYPES = ("uint16", "uint32")


def _sidecar_problem(d) -> str | None:
    """What makes a parsed sidecar unusable (a sentence fragment), or None."""
    if not isinstance(d, dict):
        return f"holds a JSON {type(d).__name__}, not an object"
    required = [name for name, f in CorpusInfo.__dataclass_fields__.items() if name != "path"
                and f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in d]
    if missing:
        return f"lacks the field(s) {', '.join(missing)}"
    bad = [name for name in _COUNT_FIELDS
           if not (isinstance(d[name], int) and not isinstance(d[name], bool) and d[name] >= 0)]
    if bad:
        return "has " + ", ".join(f"{name} = {d[name]!r}" for name in bad) + " (must be whole numbers >= 0)"
    if d["dtype"] not in _DTYPES:
        return f"has dtype = {d['dtype']!r} (must be one of {', '.join(_DTYPES)})"
    if not (d["eos_id"] is None or (isinstance(d["eos_id"], int) and not isinstance(d["eos_id"], bool))):
        return f"has eos_id = {d['eos_id']!r} (must be a token id or null)"
    return None


def _rebuild_hint(path: Path) -> str:
    return (f"rebuild the token file and its sidecar together with `scalinglab data prepare FILES -o {path}` "
            "(the same inputs and options as before)")


def _write_sidecar(info: CorpusInfo) -> None:
    d = asdict(info)
    d["path"] = Path(info.path).name
    _atomic_write_text(sidecar_path(info.path), json.dumps(d, indent=2))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------- reading documents

def default_corpus_files() -> Iterator[Path]:
    """Python sources installed under the interpreter's prefix (stdlib, then site-packages).

    A lazy walk in sorted order (directories and files sorted by name at every level), so the
    order is deterministic and a byte cap stops the walk early instead of listing every file.
    """
    paths = sysconfig.get_paths()
    roots: list[Path] = []
    for key in ("stdlib", "purelib", "platlib"):
        root = Path(paths[key]) if key in paths else None
        if root and root.is_dir() and not any(root == r or r in root.parents for r in roots):
            roots.append(root)
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(".py"):
                    yield Path(dirpath) / name


def _expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in SUFFIXES)
            if not found:
                raise CorpusError(f"input directory {p} holds no files with a supported suffix "
                                  f"({', '.join(SUFFIXES)})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise CorpusError(f"input file {p} does not exist (inputs: text files "
                              f"{'/'.join(TEXT_SUFFIXES)}, .jsonl with a 'text' field, .parquet "
                              "with a 'text' column, or directories of them)")
    return files


def iter_documents(path: Path, *, strict: bool = True) -> Iterator[str]:
    """The documents in one input file: the whole file for text, one per JSONL line / Parquet row."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CorpusError(f"{path}, line {lineno}: not valid JSON ({exc.msg}); each line "
                                      "must be an object with a 'text' field") from None
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise CorpusError(f"{path}, line {lineno}: expected an object with a string "
                                      "'text' field")
                yield record["text"]
    elif suffix == ".parquet":
        import pyarrow.parquet as pq
        pf = pq.ParquetFile(path)
        if "text" not in pf.schema_arrow.names:
            raise CorpusError(f"{path}: no 'text' column (columns: {', '.join(pf.schema_arrow.names)})")
        for batch in pf.iter_batches(columns=["text"], batch_size=4096):
            for text in batch.column(0).to_pylist():
                if text is not None:
                    yield text
    else:
        data = path.read_bytes()
        try:
            yield data.decode("utf-8")
        except UnicodeDecodeError:
            if strict:
                raise CorpusError(f"{path} is not UTF-8 text; inputs must be text files "
                                  f"({'/'.join(TEXT_SUFFIXES)}), .jsonl or .parquet") from None


def _documents(files: Iterable[Path], max_bytes: int | None, strict: bool,
               on_file: Callable[[Path], None] | None, stats: dict) -> Iterator[str]:
    """Deduplicated (by content hash), non-empty documents, stopping once ``max_bytes`` is read."""
    seen: set[bytes] = set()
    stats.update(n_bytes=0, n_duplicates=0, sources=[])
    for f in files:
        if on_file:
            on_file(f)
        used = False
        for text in iter_documents(f, strict=strict):
            if not text:
                continue
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
            if digest in seen:
                stats["n_duplicates"] += 1
                continue
            seen.add(digest)
            used = True
            stats["n_bytes"] += len(text.encode("utf-8", "surrogatepass"))
            yield text
            if max_bytes is not None and stats["n_bytes"] >= max_bytes:
                stats["sources"].append(str(f))
                return
        if used:
            stats["sources"].append(str(f))


# ---------------------------------------------------------------- tokenizers

class _ByteTokenizer:
    """UTF-8 bytes 0..255 plus one end-of-text id 256."""
    vocab_size = 257
    eos_id = 256

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8", "surrogatepass"), dtype=np.uint8) for t in texts]


class _HFTokenizer:
    def __init__(self, tok):
        self.tok = tok
        vocab = tok.get_vocab(with_added_tokens=True)
        eos = next((t for t in _EOS_CANDIDATES if t in vocab), None)
        if eos is None:
            tok.add_special_tokens([EOS_TOKEN])
            eos = EOS_TOKEN
        self.eos_id = tok.token_to_id(eos)
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64)
                for e in self.tok.encode_batch(texts, add_special_tokens=False)]


def _train_bpe(documents: Iterator[str], vocab_size: int) -> "object":
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(documents, trainer=trainer)
    return tok


# ---------------------------------------------------------------- writing token files

def _val_score(seed: int, tokens: np.ndarray) -> float:
    """A uniform number in [0, 1) from (seed, document content): the document's split lottery."""
    h = hashlib.blake2b(tokens.tobytes(), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(h, "little") / 2.0 ** 64


def split_problem(n_train: int, n_val: int, n_documents: int, n_val_documents: int, seq_len: int, *,
                  check_val: bool = True) -> str | None:
    """Why a corpus with these splits cannot train a run of context ``seq_len``, else None.

    The trainer draws windows of ``seq_len + 1`` tokens (a sequence and its next-token targets)
    from the training split and measures every loss on the validation split, so each split needs
    at least that many tokens.
    """
    need = int(seq_len) + 1
    short = [(name, n) for name, n in (("training", n_train), ("validation", n_val))
             if n < need and (check_val or name == "training")]
    if not short:
        return None
    have = " and ".join(f"the {name} split has {n:,}" for name, n in short)
    msg = (f"holds {n_train + n_val:,} tokens ({n_train:,} training, {n_val:,} validation, from "
           f"{n_documents:,} document(s), {n_val_documents:,} held out); a run with context {seq_len} "
           f"needs at least {need:,} tokens (one sequence plus its next-token target) in each split, "
           f"but {have}")
    hints = []
    if n_train < need:
        hints.append("give more text (more or longer documents)")
    if n_val < need and check_val:
        hints.append("the split is by document and there is only one: give at least 2 documents "
                     "(several files, or a .jsonl with one document per line)" if n_documents < 2
                     else "raise --val-fraction or add documents")
    smallest = min(n_train, n_val) if check_val else n_train
    if smallest > 1:
        hints.append(f"use a context of at most {smallest - 1}")
    return msg + "; " + "; ".join(hints)


def check_trainable(info: "CorpusInfo", seq_len: int, *, option: str = "--corpus") -> None:
    """Refuse (CorpusError) a corpus whose splits cannot hold one ``seq_len`` window each."""
    problem = split_problem(info.n_train, info.n_val, info.n_documents, info.n_val_documents, seq_len)
    if problem:
        raise CorpusError(f"{option} {info.path} {problem}")


def _write_split(out: Path, docs: Iterable[np.ndarray], *, vocab_size: int, val_fraction: float,
                 seed: int, min_context: int = 0) -> tuple[str, int, int, int, int]:
    """Stream documents to a scratch file, then lay them out train-first, validation-last.

    ``min_context`` > 0: refuse (before anything is written to ``out``) when a split cannot hold
    one window of that context (see ``split_problem``); the validation split only when
    ``val_fraction`` > 0."""
    dtype = np.uint16 if vocab_size <= 65535 else np.uint32
    offsets, lengths, scores = [], [], []
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=out.name + ".", suffix=".scratch",
                                     delete=False) as scratch:
        try:
            pos = 0
            for tokens in docs:
                arr = np.asarray(tokens).astype(dtype, copy=False)
                scratch.write(arr.tobytes())
                offsets.append(pos)
                lengths.append(len(arr))
                scores.append(_val_score(seed, arr))
                pos += len(arr)
            scratch.flush()
            n_docs = len(lengths)
            if pos == 0:
                return np.dtype(dtype).name, 0, 0, n_docs, 0
            scores_a = np.asarray(scores)
            is_val = scores_a < val_fraction
            if val_fraction > 0 and n_docs >= 2 and not is_val.any():
                is_val[np.argmin(scores_a)] = True      # a tiny corpus still gets a validation doc
            if is_val.all():
                is_val[np.argmax(scores_a)] = False     # ... and keeps a training doc
            if min_context > 0:
                lengths_a = np.asarray(lengths)
                n_val_tokens = int(lengths_a[is_val].sum())
                problem = split_problem(pos - n_val_tokens, n_val_tokens, n_docs, int(is_val.sum()),
                                        min_context, check_val=val_fraction > 0)
                if problem:
                    raise CorpusError(f"-o {out}: not written: the corpus {problem}")
            src = np.memmap(scratch.name, dtype=dtype, mode="r", shape=(pos,))
            tmp_out = out.with_name(out.name + ".tmp")
            dst = np.memmap(tmp_out, dtype=dtype, mode="w+", shape=(pos,))
            w = 0
            n_train = 0
            for want_val in (False, True):
                for i in np.flatnonzero(is_val == want_val):
                    dst[w:w + lengths[i]] = src[offsets[i]:offsets[i] + lengths[i]]
                    w += lengths[i]
                if not want_val:
                    n_train = w
            dst.flush()
            del dst, src
            os.replace(tmp_out, out)
            return np.dtype(dtype).name, n_train, pos - n_train, n_docs, int(is_val.sum())
        finally:
            os.unlink(scratch.name)


def prepare_corpus(inputs: list[Path] | None, out: str | Path, *, tokenizer: str = "byte",
                   vocab_size: int = 8192, val_fraction: float = 0.01, seed: int = 0,
                   max_bytes: int | None = None, min_context: int = 0,
                   on_file: Callable[[Path], None] | None = None) -> CorpusInfo:
    """Tokenize documents into a flat token file ``out`` plus the JSON sidecar ``out.json``.

    inputs: text files (one document per file), .jsonl (a 'text' field per line), .parquet (a
        'text' column), or directories of them. None or empty: the built-in corpus, the Python
        sources installed with this interpreter, capped at ``max_bytes`` (default
        ``DEFAULT_MAX_BYTES`` = 50 MB); files that are not UTF-8 are skipped there.
    tokenizer: "byte" (UTF-8 bytes + end-of-text, vocab 257), "bpe" (byte-level BPE of
        ``vocab_size`` trained on these documents with ``tokenizers``, saved beside ``out``),
        or the path of a tokenizer JSON file.
    max_bytes: stop reading once this many bytes of text were taken (None: no cap, except the
        built-in corpus's default).
    min_context: when > 0, refuse (CorpusError, nothing written) a corpus whose training split,
        or validation split when ``val_fraction`` > 0, holds fewer than ``min_context + 1``
        tokens: one window of that context, the least a run can train or be measured on.
    on_file: called with each input file before it is read (progress display).
    """
    out = Path(out)
    if not 0.0 <= val_fraction < 1.0:
        raise CorpusError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if max_bytes is not None and max_bytes <= 0:
        raise CorpusError(f"--max-bytes must be a positive number of bytes, got {max_bytes}")
    if min_context < 0:
        raise CorpusError(f"--context must be a positive number of tokens, got {min_context}")
    builtin = not inputs
    if builtin:
        files = None    # walked afresh on each pass (BPE reads the documents twice)
        max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    else:
        files = _expand_inputs(inputs)
    if not out.parent.exists():
        raise CorpusError(f"output directory {out.parent} (of -o {out}) does not exist")
    if out.suffix.lower() in (".json",) + SUFFIXES:
        raise CorpusError(f"output {out} would overwrite an input-like file; use a .bin name, "
                          "e.g. -o corpus.bin")
    stats: dict = {}

    def docs(on_file=None):
        return _documents(default_corpus_files() if builtin else files, max_bytes, strict=not builtin, on_file=on_file, stats=stats)

    tokenizer_file = None
    if tokenizer == "byte":
        tok = _ByteTokenizer()
    elif tokenizer == "bpe":
        if not 256 < vocab_size <= 2 ** 32 - 1:
            raise CorpusError(f"--vocab-size for BPE must be above 256 (the byte alphabet), got "
                              f"{vocab_size}")
        tok = _HFTokenizer(_train_bpe(docs(), vocab_size))
        tokenizer_file = out.with_name(out.name + ".tokenizer.json")
        tok.tok.save(str(tokenizer_file))
    else:
        path = Path(tokenizer)
        if path.suffix.lower() != ".json" or not path.is_file():
            raise CorpusError(f"--tokenizer must be 'byte', 'bpe' or an existing tokenizer JSON "
                              f"file (tokenizers library format); got {tokenizer!r}")
        from tokenizers import Tokenizer
        try:
            tok = _HFTokenizer(Tokenizer.from_file(str(path)))
        except Exception as exc:  # the library raises a bare Exception on bad files
            raise CorpusError(f"--tokenizer {path}: not a readable tokenizers JSON file ({exc})") from None
        tokenizer_file = str(path.resolve())

    def token_docs() -> Iterator[np.ndarray]:
        batch: list[str] = []
        for text in docs(on_file):
            batch.append(text)
            if len(batch) == 256:
                yield from _with_eos(tok.encode_batch(batch), tok.eos_id)
                batch = []
        if batch:
            yield from _with_eos(tok.encode_batch(batch), tok.eos_id)

    dtype, n_train, n_val, n_docs, n_val_docs = _write_split(
        out, token_docs(), vocab_size=tok.vocab_size, val_fraction=val_fraction, seed=seed,
        min_context=min_context)
    if n_docs == 0 or n_train + n_val == 0:
        where = "the built-in corpus" if builtin else "inputs " + ", ".join(map(str, inputs))
        raise CorpusError(f"empty corpus: {where} hold no non-empty documents (text files need "
                          "content, .jsonl lines a non-empty 'text', .parquet a 'text' column)")
    info = CorpusInfo(path=str(out), tokenizer=tokenizer if tokenizer in ("byte", "bpe") else
                      str(Path(tokenizer).resolve()), vocab_size=tok.vocab_size, eos_id=tok.eos_id,
                      dtype=dtype, n_train=n_train, n_val=n_val, n_documents=n_docs,
                      n_val_documents=n_val_docs, n_duplicates=stats["n_duplicates"],
                      n_bytes=stats["n_bytes"],
                      sources=["<python sources under " + sys_prefix_lib() + ">"] if builtin
                      else stats["sources"],
                      tokenizer_file=str(tokenizer_file) if tokenizer_file else None, seed=seed)
    _write_sidecar(info)
    return info


def sys_prefix_lib() -> str:
    return str(Path(sysconfig.get_paths()["stdlib"]))


def _with_eos(arrays: list[np.ndarray], eos_id: int) -> Iterator[np.ndarray]:
    for a in arrays:
        if len(a):
            yield np.concatenate([a.astype(np.int64), [eos_id]])


# ---------------------------------------------------------------- a corpus with a known floor

def markov_transition_matrix(vocab_size: int, seed: int, concentration: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(vocab_size, concentration), size=vocab_size)


def _stationary(P: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


def markov_entropy_rate(P: np.ndarray) -> float:
    """Entropy rate of a stationary order-1 Markov chain, nats/token: -sum_i pi_i sum_j P_ij log P_ij."""
    pi = _stationary(P)
    with np.errstate(divide="ignore", invalid="ignore"):
        row_h = -np.where(P > 0, P * np.log(P), 0.0).sum(axis=1)
    return float(pi @ row_h)


def synthetic_corpus(out: str | Path, n_tokens: int = 1_000_000, *, vocab_size: int = 64,
                     n_documents: int = 64, concentration: float = 0.1, val_fraction: float = 0.05,
                     seed: int = 0) -> CorpusInfo:
    """Tokens from a fixed random order-1 Markov chain; ``info.entropy_floor`` is its entropy rate.

    Each document is an independent stretch of the chain started from its stationary
    distribution, so the best achievable loss given the previous token is exactly the entropy
    rate (a model sees only the first position of each window without context, which costs
    (H(pi) - rate) / seq_len above the floor). No end-of-text id: vocab is ``vocab_size``.
    """
    if n_tokens < 2 * n_documents or vocab_size < 2:
        raise CorpusError("synthetic_corpus needs vocab_size >= 2 and n_tokens >= 2 * n_documents")
    out = Path(out)
    P = markov_transition_matrix(vocab_size, seed, concentration)
    cum = np.cumsum(P, axis=1)
    cum[:, -1] = 1.0
    rng = np.random.default_rng(seed + 1)
    length = n_tokens // n_documents
    seqs = np.empty((n_documents, length), dtype=np.int64)
    state = rng.choice(vocab_size, size=n_documents, p=_stationary(P))
    u = rng.random((length, n_documents))
    for t in range(length):
        seqs[:, t] = state
        state = (cum[state] < u[t][:, None]).sum(axis=1)
    dtype, n_train, n_val, n_docs, n_val_docs = _write_split(
        out, list(seqs), vocab_size=vocab_size, val_fraction=val_fraction, seed=seed)
    info = CorpusInfo(path=str(out), tokenizer="synthetic", vocab_size=vocab_size, eos_id=None,
                      dtype=dtype, n_train=n_train, n_val=n_val, n_documents=n_docs,
                      n_val_documents=n_val_docs, sources=[f"<markov chain seed={seed} "
                                                           f"concentration={concentration}>"],
                      entropy_floor=markov_entropy_rate(P), seed=seed)
    _write_sidecar(info)
    return info


# ---------------------------------------------------------------- data repetition

def epochs_for(tokens_needed: float, info: CorpusInfo | str | Path) -> float:
    """How many passes over the training split a run of ``tokens_needed`` tokens makes."""
    if not isinstance(info, CorpusInfo):
        info = load_corpus_info(info)
    return float(tokens_needed) / info.n_train


def repetition_warning(tokens_needed: float, info: CorpusInfo | str | Path, *,
                       warn: bool = True) -> str | None:
    """A message (and a ``UserWarning``) when a run would see its data more than once, else None."""
    if not isinstance(info, CorpusInfo):
        info = load_corpus_info(info)
    epochs = epochs_for(tokens_needed, info)
    if epochs <= 1.0:
        return None
    msg = (f"a run of {tokens_needed:,.0f} tokens repeats the corpus {info.path} "
           f"({info.n_train:,} training tokens) {epochs:.2f} times; repeated tokens are worth less "
           "than fresh ones (Muennighoff et al. 2023), so loss at this D will be optimistic only "
           "below ~4 epochs and the law's D is not unique tokens")
    if warn:
        warnings.warn(msg, UserWarning, stacklevel=2)
    return msg


# ---------------------------------------------------------------- batches

class TokenData:
    """Batches of (inputs, targets) windows from a prepared token file.

    ``batch(step, ...)`` draws window starts from a generator seeded by (seed, step), so the data
    a step sees depends on nothing but the step: a resumed run sees exactly the same data.
    """

    def __init__(self, path: str | Path, *, seed: int = 0):
        self.info = load_corpus_info(path)
        self.seed = seed
        n = self.info.n_tokens
        self.tokens = np.memmap(path, dtype=self.info.dtype, mode="r", shape=(n,))
        self.splits = {"train": (0, self.info.n_train), "val": (self.info.n_train, n)}

    def _split(self, split: str, seq_len: int) -> tuple[int, int]:
        if split not in self.splits:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        lo, hi = self.splits[split]
        if hi - lo < seq_len + 1:
            raise CorpusError(f"the {split} split of {self.info.path} has {hi - lo} tokens, fewer "
                              f"than seq_len + 1 = {seq_len + 1}; use a bigger corpus or a "
                              "shorter seq_len")
        return lo, hi

    def batch(self, step: int, batch_size: int, seq_len: int, split: str = "train"):
        """int64 arrays x, y of shape (batch_size, seq_len), y = x shifted by one token."""
        lo, hi = self._split(split, seq_len)
        rng = np.random.default_rng([self.seed, step, 0 if split == "train" else 1])
        starts = lo + rng.integers(0, hi - lo - seq_len, size=batch_size)
        return self._windows(starts, seq_len)

    def val_batches(self, batch_size: int, seq_len: int, max_tokens: int):
        """The fixed validation set: consecutive non-overlapping windows from the split's start."""
        lo, hi = self._split("val", seq_len)
        n_windows = max(1, min((hi - lo - 1) // seq_len, math.ceil(max_tokens / seq_len)))
        starts = lo + seq_len * np.arange(n_windows)
        for i in range(0, n_windows, batch_size):
            yield self._windows(starts[i:i + batch_size], seq_len)

    def _windows(self, starts: np.ndarray, seq_len: int):
        idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
        w = np.asarray(self.tokens[idx], dtype=np.int64)
        return w[:, :-1], w[:, 1:]
