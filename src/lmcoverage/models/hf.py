"""Hugging Face causal-LM directories: load (safetensors only, never unpickle) and save atomically.

A model directory is what ``save_pretrained`` writes: ``config.json``, ``model.safetensors`` (or
sharded ``model-0000x-of-0000y.safetensors`` with an index), and optionally a tokenizer. A single
GGUF file (``*.gguf``, llama.cpp's format; not pickle) is accepted too: model and tokenizer are
read from it and dequantised to float32 (needs the ``gguf`` package: the ``lmcoverage[gguf]``
extra). Pickle checkpoints (``pytorch_model.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) are refused:
unpickling a file someone handed us can run arbitrary code. Nothing is downloaded: loading is
local-only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcoverage.errors import InputError
from lmcoverage.io import usual_mode

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
GGUF_SUFFIX = ".gguf"
_GGUF_MAGIC = b"GGUF"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                   "vocab.txt", "spiece.model")


@contextmanager
def _quiet_hf(gguf: bool = True) -> Iterator[None]:
    """Hide transformers' own progress bars (loading/writing shards) for the duration, and,
    with ``gguf``, the GGUF de-quantisation bar (a plain ``tqdm`` in transformers)."""
    import functools

    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    module: Any = None
    if gguf:
        module = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    bar = getattr(module, "tqdm", None)
    if module is not None and bar is not None:
        module.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if module is not None and bar is not None:
            module.tqdm = bar
        if enabled:
            hf_logging.enable_progress_bar()


def is_gguf(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a GGUF model file (by its ``.gguf`` suffix; it need not exist)."""
    return Path(path).suffix.lower() == GGUF_SUFFIX


def _require_gguf() -> None:
    """EnvError (exit 1) with the install hint when the ``gguf`` package is missing."""
    from lmcoverage.errors import EnvError

    if importlib.util.find_spec("gguf") is None:
        raise EnvError("loading a .gguf model needs the gguf package: "
                       "pip install 'lmcoverage[gguf]'")


def _check_gguf_file(p: Path) -> Path:
    """``p`` if it is a regular file that starts with the GGUF magic bytes."""
    if not p.is_file():
        raise InputError(f"GGUF model path is not a file: {p}")
    with open(p, "rb") as fh:
        magic = fh.read(len(_GGUF_MAGIC))
    if magic != _GGUF_MAGIC:
        raise InputError(f"not a GGUF file (no GGUF header): {p}")
    return p


def check_model_dir(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path if it is a local HF model directory with safetensors weights,
    or a GGUF model file (``*.gguf``).

    Raises:
        ValueError: the path is missing, is not a directory (nor a GGUF file), has no
            ``config.json``, has only pickle weights, or has no weights at all; a ``.gguf``
            path without the GGUF header.
    """
    p = Path(path)
    _no_symlink_loop(p, "model path")
    if not p.exists():
        raise InputError(f"model directory not found: {p}")
    if is_gguf(p):
        return _check_gguf_file(p)
    if not p.is_dir():
        if p.suffix.lower() in PICKLE_SUFFIXES:
            raise InputError(f"model path {p} is a pickle checkpoint; refusing to unpickle it: "
                             "convert to safetensors first")
        raise InputError(f"model path is not a directory (nor a .gguf file): {p}")
    if not (p / "config.json").is_file():
        raise InputError(f"model directory has no config.json: {p}")
    if any(p.glob("*.safetensors")):
        return p
    pickled = sorted(f.name for f in p.iterdir() if f.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise InputError(
            f"model directory {p} holds only pickle checkpoints ({', '.join(pickled)}); "
            "refusing to unpickle them: convert to safetensors first"
        )
    raise InputError(f"model directory has no weights (*.safetensors): {p}")


def _no_symlink_loop(p: Path, what: str) -> None:
    """InputError when ``p`` is a symlink that resolves to itself (``ELOOP``)."""
    import errno

    try:
        os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{what} {p}: is a symlink loop") from None


def check_model_files(path: str | os.PathLike[str], trust_remote_code: bool = False) -> Path:
    """:func:`check_model_dir`, then what would otherwise fail deep inside ``transformers``:
    ``config.json`` that is not a JSON object, code shipped in the directory (``auto_map``)
    without ``trust_remote_code``, a ``model_type`` transformers does not know, a
    ``vocab_size`` below 1, and safetensors files that are symlink loops or truncated (the
    header's tensors must end exactly at the end of the file).

    Raises:
        InputError: naming the directory and what is wrong (one line).
    """
    import json

    p = check_model_dir(path)
    if is_gguf(p):
        return p
    try:
        config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"model directory {p}: config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InputError(f"model directory {p}: config.json is not a JSON object")
    if config.get("auto_map") and not trust_remote_code:
        raise InputError(f"model directory {p}: config.json maps the model to code shipped in "
                         "the directory (auto_map); pass --trust-remote-code to run it, only "
                         "if you trust that code")
    if not config.get("auto_map"):
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

        kind = config.get("model_type")
        if kind not in CONFIG_MAPPING_NAMES:
            raise InputError(f"model directory {p}: unknown model_type {kind!r} in "
                             "config.json (not an architecture this transformers knows)")
    vocab = config.get("vocab_size", 1)
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1:
        raise InputError(f"model directory {p}: vocab_size in config.json must be a positive "
                         f"integer, got {vocab!r}")
    for weights in sorted(p.glob("*.safetensors")):
        _check_safetensors(weights)
    return p


def _check_safetensors(f: Path) -> None:
    """InputError for a safetensors file that is a symlink loop, has a malformed header, or
    is shorter or longer than its header says."""
    import json
    import struct

    _no_symlink_loop(f, "weights file")
    size = f.stat().st_size
    with open(f, "rb") as fh:
        head = fh.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        try:
            if not 0 < length <= size - 8:
                raise ValueError("no header")
            header = json.loads(fh.read(length))
            end = max((int(v["data_offsets"][1]) for k, v in header.items()
                       if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError):
            raise InputError(f"weights file {f}: not a safetensors file (malformed header); "
                             "the file is truncated or damaged") from None
    if 8 + length + end != size:
        raise InputError(f"weights file {f}: truncated or damaged ({size:,} bytes, the "
                         f"header describes {8 + length + end:,})")


#: Names accepted by ``--dtype`` (``auto``: the checkpoint's own dtype).
DTYPES = ("float32", "bfloat16", "float16", "auto")


def checkpoint_dtype(path: str | os.PathLike[str]) -> str | None:
    """The dtype a model directory's ``config.json`` records (``dtype`` or ``torch_dtype``), or
    None when it records none (or for a GGUF file, which loads dequantised to float32)."""
    p = Path(path)
    if is_gguf(p) or not (p / "config.json").is_file():
        return None
    import json

    try:
        config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("dtype", config.get("torch_dtype")) if isinstance(config, dict) else None
    return value if isinstance(value, str) else None


def resolve_dtype(name: str, device: str = "cpu",
                  checkpoint_dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The ``torch.dtype`` for ``--dtype NAME`` on ``device``.

    Args:
        name: ``float32``, ``bfloat16``, ``float16`` or ``auto`` (the checkpoint's dtype,
            float32 when it records none).
        device: torch device string the model will run on.
        checkpoint_dtype: the checkpoint's dtype for ``auto`` (a name such as ``"bfloat16"`` or
            a ``torch.dtype``; see :func:`checkpoint_dtype`).

    Raises:
        InputError: an unknown name, or a dtype the device cannot compute in (float16 or
            bfloat16 where a small matrix product in it fails; bfloat16 on a CUDA device
            without bfloat16 support).
    """
    import torch

    text = str(name).strip().lower()
    if text not in DTYPES:
        raise InputError(f"--dtype {name!r}: use one of {', '.join(DTYPES)}")
    if text == "auto":
        found = checkpoint_dtype
        if isinstance(found, str):
            found = getattr(torch, found.removeprefix("torch."), None)
        dtype = found if isinstance(found, torch.dtype) and found.is_floating_point else (
            torch.float32)
    else:
        dtype = getattr(torch, text)
    if dtype != torch.float32:
        _check_dtype_works(dtype, device, name)
    return dtype


def _check_dtype_works(dtype: torch.dtype, device: str, name: str) -> None:
    """InputError naming ``--dtype`` when ``device`` cannot multiply matrices in ``dtype``."""
    import torch

    try:
        torch_device = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device must be a torch device string, got {device!r}") from exc
    if (torch_device.type == "cuda" and dtype == torch.bfloat16 and torch.cuda.is_available()
            and not torch.cuda.is_bf16_supported()):
        raise InputError(f"--dtype {name}: this CUDA device has no bfloat16 support; use "
                         "float16 or float32")
    try:
        a = torch.ones((2, 2), dtype=dtype, device=torch_device)
        torch.nn.functional.linear(a, a).sum().item()
        torch.log_softmax(a, dim=-1)
    except (RuntimeError, NotImplementedError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"--dtype {name}: not supported on {device} ({first}); use "
                         "float32") from None


def dtype_name(dtype: torch.dtype | str) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (the name recorded in a table's provenance)."""
    return str(dtype).removeprefix("torch.")


def load_causal_lm(
    path: str | os.PathLike[str], trust_remote_code: bool = False, device: str = "cpu",
    dtype: torch.dtype | str = "float32",
) -> PreTrainedModel:
    """Load a causal LM from a local directory (safetensors only) or a GGUF file, in eval mode
    on ``device`` with weights in ``dtype``.

    Args:
        path: directory written by ``save_pretrained`` (any architecture ``AutoModelForCausalLM``
            knows; custom code only with ``trust_remote_code=True``), or a ``*.gguf`` file
            (architectures transformers can read from GGUF; weights dequantised to float32).
        trust_remote_code: allow Python code shipped in the directory to run (off by default).
        device: torch device string (``cpu``, ``cuda``, ``cuda:1``).
        dtype: a ``torch.dtype`` or a name for :func:`resolve_dtype` (``float32``, the default,
            ``bfloat16``, ``float16``, or ``auto`` for the checkpoint's own dtype). Scoring and
            sampling upcast logits to float32 whatever the weights' dtype.

    Raises:
        ValueError: see :func:`check_model_dir`; also an unknown architecture or device, or a
            GGUF file without the ``gguf`` package installed.
        InputError: an unknown ``dtype`` or one the device cannot compute in.
    """
    p = check_model_files(path, trust_remote_code)
    import torch
    from transformers import AutoModelForCausalLM

    try:
        torch_device = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device must be a torch device string, got {device!r}") from exc
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(
        dtype, device, checkpoint_dtype(p))
    if is_gguf(p):
        _require_gguf()
    try:
        with _quiet_hf(gguf=is_gguf(p)):
            if is_gguf(p):
                model: Any = AutoModelForCausalLM.from_pretrained(
                    p.parent, gguf_file=p.name, dtype=torch.float32,
                    trust_remote_code=trust_remote_code, local_files_only=True,
                )
            else:
                model = AutoModelForCausalLM.from_pretrained(
                    p, use_safetensors=True, trust_remote_code=trust_remote_code,
                    local_files_only=True, dtype=torch_dtype,
                )
    except (OSError, KeyError) as exc:
        raise InputError(f"cannot load a causal LM from {p}: {exc}") from exc
    except RuntimeError as exc:
        if "mismatched_sizes" not in str(exc) and "size mismatch" not in str(exc):
            raise
        raise InputError(f"model directory {p}: weight shapes do not match config.json "
                         "(shape mismatch)") from None
    if is_gguf(p):  # dequantised float32 weights: a plain model (save_pretrained works)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model.to(device=torch_device, dtype=torch_dtype).eval()


def load_tokenizer(path: str | os.PathLike[str],
                   trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a model directory, or the one inside a GGUF file (local files only).

    Raises:
        ValueError: the directory holds no tokenizer; a GGUF file without the ``gguf`` package.
    """
    from transformers import AutoTokenizer

    p = Path(path)
    if is_gguf(p):
        _check_gguf_file(p)
        _require_gguf()
        try:
            return AutoTokenizer.from_pretrained(
                p.parent, gguf_file=p.name, local_files_only=True,
                trust_remote_code=trust_remote_code,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"no usable tokenizer in GGUF file {p}: {exc}") from exc
    _no_symlink_loop(p, "model path")
    if not any((p / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(f"no usable tokenizer in model directory {p}: no tokenizer files")
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            p, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"no usable tokenizer in model directory {p}: {exc}") from exc
    _check_chat_template(tokenizer, p)
    return tokenizer


def _check_chat_template(tokenizer: PreTrainedTokenizerBase, p: Path) -> None:
    """InputError when the tokenizer's chat template does not compile (Jinja syntax)."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return
    from jinja2 import TemplateError
    from transformers.utils.chat_template_utils import _compile_jinja_template

    try:
        _compile_jinja_template(template)
    except TemplateError as exc:
        raise InputError(f"model directory {p}: the chat template does not parse "
                         f"({type(exc).__name__}: {exc})") from None


def save(model: PreTrainedModel, path: str | os.PathLike[str],
         tokenizer: PreTrainedTokenizerBase | None = None) -> Path:
    """Write ``model`` (and ``tokenizer``) as an HF directory with safetensors weights, atomically.

    Everything is written to a temporary sibling directory first and renamed onto ``path``, so a
    crash never leaves a half-written model; an existing directory at ``path`` is replaced.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, usual_mode(directory=True))
    try:
        with _quiet_hf(gguf=False):
            model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if not any(tmp.glob("*.safetensors")):
            raise InputError(f"save_pretrained wrote no safetensors weights for {target}")
        for written in tmp.iterdir():  # some writers use 0600 temporary files
            if written.is_file():
                os.chmod(written, usual_mode())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old",
                                        dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
