"""The tiny zoo: small models trained on this machine from seeded recipes, which the ``tiny`` profile loads in
place of the course's Hub models.

Each zoo model is a folder that ``Auto*.from_pretrained(path)`` loads exactly like a Hub model:

======================  ===================================  =====================================
zoo name                in place of                          what it is
======================  ===================================  =====================================
``tiny-opt``            ``facebook/opt-350m``                OPT causal LM, pre-trained with commented code
``tiny-gpt2``           ``gpt2``                             GPT-2 causal LM, briefly pre-trained
``tiny-gpt2-imdb``      ``lvwerra/gpt2-imdb``                ``tiny-gpt2`` trained on more reviews
``tiny-sentiment``      ``lvwerra/distilbert-imdb``          DistilBERT classifier, NEGATIVE/POSITIVE
``tiny-qwen2``          ``Qwen/Qwen2.5-0.5B-Instruct``       Qwen2 causal LM, briefly pre-trained
``tiny-sft``            ``pipeline:sft`` (lab 01's model)    ``tiny-opt`` after lab 01's tiny SFT run
``tiny-reward``         ``pipeline:reward`` (lab 02's)       ``tiny-sft`` after lab 02's reward run
======================  ===================================  =====================================

``tiny-sft`` and ``tiny-reward`` are the zoo's copies of labs 01 and 02's hand-overs, trained by those labs' own
tiny recipes (:mod:`labhelpers.zoo_copies`).

They share one byte-level BPE vocabulary trained with the ``tokenizers`` library on the synthetic corpus of
:mod:`labhelpers.synthetic`; the GPT-2 models get a GPT-2-style tokenizer (``<|endoftext|>`` for bos/eos, no
pad token, just like ``gpt2``), OPT gets an OPT-style one (``</s>`` prepended, a ``<pad>`` token).

Models are built once into ``$LABHELPERS_CACHE/zoo/<name>-<hash>``; the hash covers the recipe, the corpus,
and the torch/transformers versions, so a changed recipe builds a new folder and never overwrites an old one.
Building is seeded: rebuilding gives identical weights on the same machine and versions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import zoo_cache, zoo_copies
from .quiet import no_transformers_bars

ZOO_VERSION = 1
SPECIAL_TOKENS = ["<pad>", "</s>", "<|endoftext|>", "<unk>", "<s>"]
# Every turn is "### Role:\n<content>\n\n". An assistant turn's content and the EOS token after it sit between
# {% generation %} markers: apply_chat_template(..., return_assistant_tokens_mask=True), and so TRL's
# assistant_only_loss, trains exactly those tokens, the EOS included, so a tuned model learns to end its turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '### Assistant:\\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\\n\\n' }}"
    "{% else %}"
    "{{ '### ' + message['role'] | capitalize + ':\\n' + message['content'] + '\\n\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant:\\n' }}{% endif %}"
)


def cache_dir() -> Path:
    """The folder holding the zoo: ``$LABHELPERS_CACHE`` or the user's cache folder."""
    env = os.environ.get("LABHELPERS_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("labhelpers"))


@dataclass(frozen=True)
class ZooRecipe:
    """How one zoo model is made. Every field goes into the cache key."""

    name: str
    hub_id: str  # the course's Hub model that this zoo model replaces in the tiny profile
    kind: str  # "causal-lm" | "classifier"
    architecture: str  # "opt" | "gpt2" | "distilbert"
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    max_positions: int = 256
    steps: int = 300
    batch_size: int = 32
    block_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    init_from: str | None = None  # continue training another zoo model (gpt2 -> gpt2-imdb)
    # "mixed" | "mixed+commented" | "reviews" | "labelled-reviews" | "lab01-sft" (lab 01's recipe and rows)
    corpus: str = "mixed"
    notes: dict = field(default_factory=dict)


RECIPES: dict[str, ZooRecipe] = {
    r.name: r
    for r in [
        # 1000 steps with commented code: after 160 steps of plain text, lab 01's SFT left every held-out
        # question wrong (the model had not learned to copy a word from its prompt); now 250 SFT steps
        # generalise to new function and loop questions
        ZooRecipe("tiny-opt", "facebook/opt-350m", "causal-lm", "opt", steps=1000, batch_size=16,
                  corpus="mixed+commented"),
        ZooRecipe("tiny-gpt2", "gpt2", "causal-lm", "gpt2", steps=160, batch_size=16),
        ZooRecipe("tiny-gpt2-imdb", "lvwerra/gpt2-imdb", "causal-lm", "gpt2", steps=80, batch_size=16,
                  init_from="tiny-gpt2", corpus="reviews", learning_rate=2e-3),
        ZooRecipe("tiny-sentiment", "lvwerra/distilbert-imdb", "classifier", "distilbert", steps=100,
                  corpus="labelled-reviews", learning_rate=1e-3, block_size=48),
        # lab 06: the architecture of Qwen2.5 (grouped-query attention with 2 key/value heads, SwiGLU MLP, tied
        # embeddings), so the LoRA target modules and the memory formula are the same in both profiles
        ZooRecipe("tiny-qwen2", "Qwen/Qwen2.5-0.5B-Instruct", "causal-lm", "qwen2", steps=160, batch_size=16),
        # lab 01's tiny run, not a pre-training: steps, batch and learning rate are lab 01's (see _sft_recipe)
        ZooRecipe("tiny-sft", "pipeline:sft", "causal-lm", "opt", steps=0, batch_size=0, learning_rate=0.0,
                  init_from="tiny-opt", corpus="lab01-sft"),
        # lab 02's tiny run on tiny-sft: a reward model (one output), for labs that score with lab 02's model
        ZooRecipe("tiny-reward", "pipeline:reward", "reward-model", "opt", steps=0, batch_size=0, learning_rate=0.0,
                  init_from="tiny-sft", corpus="lab02-reward"),
    ]
}

ZOO_NAMES_BY_HUB_ID = {r.hub_id: r.name for r in RECIPES.values()}


# --------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------
TOKENIZER_VOCAB = 1024


# Frozen on purpose: the labs' own generators may change without changing the shared vocabulary.
_TOKENIZER_EXTRA = [
    "### Instruction:\n### Input:\n### Response:\n### User:\n### Assistant:\n",
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "Reverse the letters. Sort the letters in alphabetical order. Write the letters twice. Write the first and "
    "the last letter. Write a Python function that adds two numbers. The answer is",
    "def add(a, b):\n    return a + b\nfor i in range(5):\n    print(i)\n",
    "Sure . I do not know . Ask someone else . Write one line about the film: Human: Assistant:",
]


def _tokenizer_corpus() -> list[str]:
    from . import synthetic

    return synthetic.pretraining_corpus(3000, seed=123) + _TOKENIZER_EXTRA * 50


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _versions_key() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
            "zoo": ZOO_VERSION}


@functools.lru_cache(maxsize=1)
def _trained_bpe_json() -> str:
    return _train_bpe(_tokenizer_corpus()).to_str()


def _train_bpe(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def build_tokenizer(style: str):
    """A ``PreTrainedTokenizerFast`` in the style of ``"gpt2"``, ``"opt"`` or ``"classifier"``."""
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(_trained_bpe_json())
    if style == "gpt2":
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                       eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    elif style == "opt":
        bos_id = tok.token_to_id("</s>")
        tok.post_processor = processors.TemplateProcessing(
            single="</s> $A", pair="</s> $A </s> $B", special_tokens=[("</s>", bos_id)])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="</s>", eos_token="</s>",
                                       pad_token="<pad>", unk_token="<unk>")
    elif style == "qwen2":  # like Qwen2.5: no BOS token, nothing prepended, a pad token distinct from EOS
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>",
                                       unk_token="<unk>")
    elif style == "classifier":
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                       bos_token="<s>", eos_token="</s>")
    else:
        raise ValueError(f"Unknown tokenizer style {style!r}; choose 'gpt2', 'opt', 'qwen2' or 'classifier'.")
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 256
    return fast


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------
def _model_config(recipe: ZooRecipe, tokenizer):
    from transformers import DistilBertConfig, GPT2Config, OPTConfig, Qwen2Config

    vocab = len(tokenizer)
    if recipe.architecture == "opt":
        return OPTConfig(vocab_size=vocab, hidden_size=recipe.hidden, num_hidden_layers=recipe.layers,
                         ffn_dim=4 * recipe.hidden, num_attention_heads=recipe.heads,
                         max_position_embeddings=recipe.max_positions, word_embed_proj_dim=recipe.hidden,
                         dropout=0.0, attention_dropout=0.0, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if recipe.architecture == "gpt2":
        return GPT2Config(vocab_size=vocab, n_embd=recipe.hidden, n_layer=recipe.layers, n_head=recipe.heads,
                          n_positions=recipe.max_positions, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if recipe.architecture == "qwen2":
        return Qwen2Config(vocab_size=vocab, hidden_size=recipe.hidden, intermediate_size=4 * recipe.hidden,
                           num_hidden_layers=recipe.layers, num_attention_heads=recipe.heads,
                           num_key_value_heads=recipe.heads // 2, max_position_embeddings=recipe.max_positions,
                           tie_word_embeddings=True, attention_dropout=0.0, pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=None, eos_token_id=tokenizer.eos_token_id)
    if recipe.architecture == "distilbert":
        return DistilBertConfig(vocab_size=vocab, dim=recipe.hidden, n_layers=recipe.layers, n_heads=recipe.heads,
                                hidden_dim=4 * recipe.hidden, max_position_embeddings=recipe.max_positions,
                                dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0,
                                pad_token_id=tokenizer.pad_token_id,
                                id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    raise ValueError(f"Unknown architecture {recipe.architecture!r}")


def _corpus_texts(corpus: str, seed: int) -> list:
    from . import synthetic

    if corpus == "mixed":
        return synthetic.pretraining_corpus(4000, seed=seed)
    if corpus == "mixed+commented":
        return synthetic.pretraining_corpus(4000, seed=seed, commented=True)
    if corpus == "reviews":
        return [r["text"] for r in synthetic.imdb_reviews(2000, seed=seed + 7)]
    if corpus == "labelled-reviews":
        return synthetic.imdb_reviews(2000, seed=seed + 11)
    if corpus in zoo_copies.CORPORA:  # a lab's own rows: the zoo's copies of the pipeline's hand-overs
        return zoo_copies.rows(corpus)
    raise ValueError(f"Unknown corpus {corpus!r}")


# The corpora are pure functions of their arguments: hash each once per process, not on every zoo_path call.
@functools.cache
def _corpus_digest(corpus: str, seed: int) -> str:
    return _digest(_corpus_texts(corpus, seed))


@functools.lru_cache(maxsize=1)
def _tokenizer_corpus_digest() -> str:
    return _digest(_tokenizer_corpus())


def _pretrain_lm(model, tokenizer, recipe: ZooRecipe, texts: list[str]) -> list[float]:
    import torch

    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    n_blocks = len(ids) // recipe.block_size
    model.loss_type = "ForCausalLM"  # GPT-2's class leaves it None, and transformers then warns on every build
    blocks = torch.tensor(ids[: n_blocks * recipe.block_size]).view(n_blocks, recipe.block_size)
    return _train_loop(model, recipe, lambda g: {"input_ids": (b := blocks[torch.randint(n_blocks, (recipe.batch_size,), generator=g)]), "labels": b})


def _train_classifier(model, tokenizer, recipe: ZooRecipe, rows: list[dict]) -> list[float]:
    import torch

    enc = tokenizer([r["text"] for r in rows], padding="max_length", truncation=True,
                    max_length=recipe.block_size, return_tensors="pt")
    labels = torch.tensor([r["label"] for r in rows])

    def batch(g):
        idx = torch.randint(len(rows), (recipe.batch_size,), generator=g)
        return {"input_ids": enc["input_ids"][idx], "attention_mask": enc["attention_mask"][idx], "labels": labels[idx]}

    return _train_loop(model, recipe, batch)


def _train_loop(model, recipe: ZooRecipe, make_batch) -> list[float]:
    import torch

    g = torch.Generator().manual_seed(recipe.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.0)
    warmup = max(1, recipe.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, recipe.steps) / recipe.steps)))
    model.train()
    losses = []
    for _ in range(recipe.steps):
        loss = model(**make_batch(g)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


def recipe_key(name: str) -> str:
    """The cache key of a zoo model: a hash of its recipe, its parents', the corpus and the versions."""
    recipe = _recipe(name)
    parent = recipe_key(recipe.init_from) if recipe.init_from else None
    payload = {"recipe": asdict(recipe), "parent": parent, "versions": _versions_key(),
               "corpus": _corpus_digest(recipe.corpus, recipe.seed), "tokenizer_corpus": _tokenizer_corpus_digest(),
               "tokenizer_vocab": TOKENIZER_VOCAB, "chat_template": CHAT_TEMPLATE}
    if recipe.corpus in zoo_copies.CORPORA:  # only here, so that the other models keep their keys
        payload.update(zoo_copies.recipe_payload(recipe.corpus))
    return _digest(payload)[:12]


def _recipe(name: str) -> ZooRecipe:
    if name in ZOO_NAMES_BY_HUB_ID:
        name = ZOO_NAMES_BY_HUB_ID[name]
    if name not in RECIPES:
        raise ValueError(f"Unknown zoo model {name!r}; the zoo has {sorted(RECIPES)}.")
    return RECIPES[name]


def zoo_path(name: str, build: bool = True) -> Path:
    """Folder of zoo model ``name`` (a zoo name such as ``"tiny-opt"``, or the Hub id it replaces).

    Builds it first when it is not cached yet (seconds), under a file lock; a folder is trusted only when it is
    complete for this recipe (see :mod:`labhelpers.zoo_cache`). The folder loads with ``Auto*.from_pretrained``.
    """
    recipe = _recipe(name)
    key = recipe_key(recipe.name)
    path = cache_dir() / "zoo" / f"{recipe.name}-{key}"
    if build:
        with no_transformers_bars():  # building the zoo is not the lab's work
            zoo_cache.install(path, {"key": key, "recipe": asdict(recipe)}, lambda: _train(recipe, path))
    return path


# The zoo's weights, and every tiny lab's figures, depend on the order the threads sum in: builds on 1 and 2 threads
# differ by 0.28 in a weight of tiny-opt, enough to fail labs 03 and 04. So every machine builds on 2 threads.
ZOO_BUILD_THREADS = 2


def _train(recipe: ZooRecipe, path: Path):
    """The model, its tokenizer and its card (``recipe.json``), trained from the seeded recipe."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, set_seed

    started = time.perf_counter()
    style = {"opt": "opt", "gpt2": "gpt2", "qwen2": "qwen2", "distilbert": "classifier"}[recipe.architecture]
    tokenizer = build_tokenizer(style)
    set_seed(recipe.seed)
    if recipe.corpus in zoo_copies.CORPORA:
        return zoo_copies.build(recipe, path, started)
    if recipe.init_from:
        model = AutoModelForCausalLM.from_pretrained(zoo_path(recipe.init_from))
    elif recipe.kind == "causal-lm":
        model = AutoModelForCausalLM.from_config(_model_config(recipe, tokenizer))
    else:
        model = AutoModelForSequenceClassification.from_config(_model_config(recipe, tokenizer))
    model = model.float()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(ZOO_BUILD_THREADS)
        if recipe.kind == "causal-lm":
            losses = _pretrain_lm(model, tokenizer, recipe, _corpus_texts(recipe.corpus, recipe.seed))
        else:
            losses = _train_classifier(model, tokenizer, recipe, _corpus_texts(recipe.corpus, recipe.seed))
    finally:
        torch.set_num_threads(threads)
    model.config.name_or_path = str(path)

    card = {"recipe": asdict(recipe), "key": path.name.rsplit("-", 1)[-1], "versions": _versions_key(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "first_loss": losses[0], "final_loss": sum(losses[-10:]) / 10,
            "build_seconds": round(time.perf_counter() - started, 2),
            "note": "Built offline by labhelpers from synthetic, seeded data; not a real checkpoint."}
    return model, tokenizer, card


def build_zoo(names: list[str] | None = None) -> dict[str, Path]:
    """Build (or find cached) every zoo model; returns ``{name: folder}``."""
    return {name: zoo_path(name) for name in (names or list(RECIPES))}


def zoo_card(name: str) -> dict:
    """The ``recipe.json`` written beside a built zoo model (parameters, losses, build time)."""
    return json.loads((zoo_path(name) / "recipe.json").read_text())
