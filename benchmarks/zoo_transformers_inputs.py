"""What benchmarks/zoo_transformers.py builds a model type from and feeds it: its config shrunk (:func:`shrink`)
and the inputs its forward names (:func:`inputs_for`).

Everything one family of models needs beyond the common sizes is data, one table per concept: the heads of
multi-head latent attention (:data:`LATENT_ATTENTION`), state-space heads (:data:`STATE_SPACE`), detection queries
(:data:`QUERIES`), expert groups (:data:`EXPERT_GROUPS`), multimodal rotary sections (:data:`MROPE`), the layout
of audio (:data:`AUDIO_CHANNELS`, :data:`FRAMES_FIRST`), vision towers fed flattened patches with their grid
(:data:`PATCHES_AS_IMAGES`), videos and image pairs (:data:`VIDEO_PIXELS`, :data:`IMAGE_PAIRS`), image sizes
(:data:`IMAGE_SIZE`), inputs a forward needs though optional (:data:`WITH`), forecasting horizons
(:data:`FORECAST`). A model type needs a code change here only when it brings a new concept.
"""

from __future__ import annotations

import inspect

import torch

BATCH, LENGTH = 2, 8
#: audio samples: 19 frames after wav2vec2's feature encoder, more than SpecAugment's mask length of 10
SAMPLES = 6400

#: a small config: every attribute of these names a config (or a config inside it) has is set to this value
SMALL = dict(
    hidden_size=32, d_model=32, n_embd=32, embed_dim=32, dim=32, emb_dim=32, projection_dim=32, text_embed_dim=32,
    vision_embed_dim=32, word_embed_proj_dim=32, encoder_hidden_size=32, projection_size=32, d_kv=8, head_dim=8,
    kv_channels=8,
    num_hidden_layers=2, n_layer=2, n_layers=2, num_layers=2, encoder_layers=2, decoder_layers=2,
    num_decoder_layers=2, num_encoder_layers=2,
    num_attention_heads=4, n_head=4, n_heads=4, num_heads=4, encoder_attention_heads=4,
    decoder_attention_heads=4, num_key_value_heads=2, n_kv_heads=2, multi_query_group_num=2,
    intermediate_size=48, ffn_dim=48, encoder_ffn_dim=48, decoder_ffn_dim=48, n_inner=48, d_ff=48,
    moe_intermediate_size=16, shared_expert_intermediate_size=16, num_experts=4, num_local_experts=4,
    n_routed_experts=4, num_experts_per_tok=2, moe_topk=2, top_k=2, first_k_dense_replace=1,
    vocab_size=99, max_position_embeddings=64, n_positions=64, n_ctx=64, max_source_positions=32,
    max_target_positions=64, num_mel_bins=16, layerdrop=0.0, encoder_layerdrop=0.0, decoder_layerdrop=0.0,
    use_cache=False, tie_word_embeddings=True, rotary_dim=8,
)

#: sizes of :data:`SMALL` a config may leave None for the model to derive, which some models read as they are
#: (HunYuan's head_dim): set where None too, to the value the model would derive
DERIVED = ("head_dim",)

#: multi-head latent attention (DeepSeek-V2/V3, GLM-MoE-DSA, Mistral 4, LongCat): its own head sizes, set where a
#: config has them (the rotary part is the head size the rotary embedding is built for: head_dim x the partial
#: rotary factor, set by :func:`shrink`); the derived query head size follows
LATENT_ATTENTION = dict(qk_nope_head_dim=8, v_head_dim=8, kv_lora_rank=16, q_lora_rank=16, index_head_dim=16,
                        index_n_heads=2)

#: state-space layers (Mamba 2 and the hybrids built on it): heads x head size must equal expand x hidden size, and
#: the heads split into whole groups; set where a config has them (as SMALL: where its value is an int)
STATE_SPACE = dict(expand=1, mamba_expand=1, mamba_n_heads=4, mamba_d_head=8, mamba_d_ssm=32, n_groups=1,
                   mamba_n_groups=1,
                   state_size=16, mamba_d_state=16, time_step_rank=8, chunk_size=8, mamba_chunk_size=8)

#: detectors that pick their queries as the top-k of the encoder's anchors (RT-DETR): no more queries than the
#: anchors of a small image; set where a config has them (as SMALL)
QUERIES = dict(num_queries=8)

#: mixtures of experts routed group by group (DeepSeek-V2/V3): the experts split into these many groups and the
#: tokens routed to the best of them, set (with the experts per token, None in DeepSeek-V2's config) where a config
#: has expert groups, whatever their value, so that each group of the few shrunk experts holds some
EXPERT_GROUPS = dict(n_group=2, topk_group=1, num_experts_per_tok=2)

#: packages whose rotary embedding splits its frequencies into (temporal, height, width) sections, with a default
#: in the modeling code when the config names none: the sections are cut to the shrunk rotary size
MROPE = ("cohere_compass", "cosmos3_edge", "ernie4_5_vl_moe", "glm4v", "glm4v_moe", "glm_image", "glm_ocr",
         "hunyuan_vl", "neomme", "paddleocr_vl", "qwen2_5_omni", "qwen2_5_vl", "qwen2_vl", "qwen3_omni_moe",
         "qwen3_vl", "qwen3_vl_moe", "qwen4_exp")

#: forecasting models: the context and horizon lengths, set where a config names them (whatever their value)
FORECAST = dict(context_length=16, prediction_length=4)

#: model types whose raw audio is (batch, channels, samples) (codecs: one channel), not (batch, samples)
AUDIO_CHANNELS = ("pe_audio", "pe_audio_video", "dac", "encodec", "mimi", "mimi_decoder", "xcodec",
                  "higgs_audio_v2_tokenizer", "snac", "pocket_tts_audio_tokenizer",
                  "pocket_tts_audio_tokenizer_encoder", "xcodec2")

#: model types whose spectrogram features are (batch, frames, features), not (batch, features, frames)
FRAMES_FIRST = ("canary", "parakeet_encoder", "parakeet_ctc", "lasr_encoder", "lasr_ctc", "nemotron3_5_asr",
                "nemotron3_diarization_audio", "nemotron3_5_transcribe_asr_audio", "wav2vec2-bert", "speech_to_text",
                "seamless_m4t_v2_speech_encoder")

#: vision towers fed patches with a grid (Qwen-VL style) whose patch embedding is a 2-D convolution over
#: (patches, channels, patch, patch) rather than a view of flattened patches
PATCHES_AS_IMAGES = ("kimi_k25_vision",)

#: image sizes (height, width) for model types whose config names none that fits (text-line recognisers: 48 x 320)
IMAGE_SIZE = {"pp_ocrv5_server_rec": (48, 320)}

#: model types whose image input is a video, (batch, frames, channels, height, width)
VIDEO_PIXELS = ("videomae", "xclip", "vivit", "timesformer")

#: model types whose image input is a pair of images, (batch, 2, channels, height, width) (keypoint matchers)
IMAGE_PAIRS = ("lightglue", "efficientloftr", "superglue")

#: inputs a model type's forward needs beyond its main input though its signature makes them optional (two-tower
#: models need both towers' inputs, layout models their boxes)
WITH = {
    **{kind: ("pixel_values",) for kind in ("clip", "siglip", "siglip2", "clipseg", "xclip", "vision-text-dual-encoder",
                                            "align", "altclip", "chinese_clip", "owlvit", "owlv2", "metaclip_2",
                                            "x_clip", "blip", "groupvit", "kosmos-2")},
    "clap": ("input_features",), "pe_audio": ("input_values",), "pe_audio_video": ("input_values",),
    "bros": ("bbox",), "udop": ("bbox",),
    "lilt": ("bbox",), "layoutlmv3": ("bbox",),
}

#: layout models whose boxes are normalised floats in 0..1, not integers in 0..1000 (UDOP)
FLOAT_BOXES = ("udop",)

#: the config attribute that sizes a model's spectrogram features, where it is not num_mel_bins
FEATURE_SIZE = ("num_mel_bins", "input_feat_per_channel", "feature_size", "feature_projection_input_dim")


def shrink(config, depth=0):
    """``config`` with every size in :data:`SMALL` it has set small, its sub-configs too, lists of depths cut
    to one block per stage (and lists of heads per stage or layer to a few); latent-attention heads, rotary sections
    and forecasting lengths cut to match."""
    from transformers import PretrainedConfig

    multi_head = vars(config).get("num_key_value_heads") == vars(config).get("num_attention_heads") is not None
    # vars, not getattr: a per-layer attribute's global getter raises (Gemma 4)
    for key, value in {**SMALL, **STATE_SPACE, **QUERIES}.items():
        if key in vars(config) and isinstance(vars(config)[key], type(value)) and not isinstance(
                vars(config)[key], bool) or key in vars(config) and isinstance(value, bool) or (
                key in DERIVED and key in vars(config) and vars(config)[key] is None):
            setattr(config, key, value)
    if multi_head:  # a model with as many key/value heads as query heads may size one of them by either count
        config.num_key_value_heads = config.num_attention_heads
    for key, each in (("depths", 1), ("num_layers_per_stage", 1), ("num_heads", 2), ("num_attention_heads", 2),
                      ("num_key_value_heads_per_layer", 2)):
        if isinstance(vars(config).get(key), (list, tuple)):
            setattr(config, key, [each] * len(vars(config)[key]))
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "sep_token_id",
                "cls_token_id", "mask_token_id", "unk_token_id"):
        if type(vars(config).get(key)) is int and vars(config)[key] >= SMALL["vocab_size"]:
            setattr(config, key, 1 + ("pad" not in key))  # ids inside the shrunk vocabulary
    _latent_attention(config)
    _mrope(config)
    for key, value in FORECAST.items():
        if key in vars(config):
            setattr(config, key, value)
    for key, value in EXPERT_GROUPS.items():
        if "n_group" in vars(config):
            setattr(config, key, value)
    for value in list(vars(config).values()):
        if isinstance(value, PretrainedConfig) and depth < 3:
            shrink(value, depth + 1)
    return config


def _rotary(config, rope=None) -> int:
    """The size of the rotary part of a head: head_dim x the partial rotary factor (of ``rope``, one layer type's
    rotary parameters, where given)."""
    rope = rope if rope is not None else vars(config).get("rope_parameters") or {}
    factor = rope.get("partial_rotary_factor", vars(config).get("partial_rotary_factor", 1.0)) or 1.0
    return int(SMALL["head_dim"] * factor)


def _latent_attention(config) -> None:
    if "qk_rope_head_dim" not in vars(config):
        return
    for key, value in LATENT_ATTENTION.items():
        if vars(config).get(key) is not None:  # a rank of None (no low-rank query) stays None
            setattr(config, key, value)
    config.qk_rope_head_dim = _rotary(config)
    if "num_key_value_heads" in vars(config):  # every head has its own keys and values, decompressed from the latent
        config.num_key_value_heads = config.num_attention_heads
    if "qk_head_dim" in vars(config):
        config.qk_head_dim = config.qk_nope_head_dim + config.qk_rope_head_dim


def _mrope(config) -> None:
    rope = vars(config).get("rope_parameters")
    package = type(config).__module__.split(".")[-2]
    if not isinstance(rope, dict) or not (package in MROPE or rope.get("mrope_section")):
        return
    per_layer = rope and all(isinstance(v, dict) for v in rope.values())  # {layer type: its rotary parameters}

    def cut(each):
        parts = len(each.get("mrope_section") or (1, 2, 3))
        half = _rotary(config, each) // 2
        # the remainder on the last section: ERNIE 4.5-VL and NeoMME stack the first two, which must be equal
        return {**each, "mrope_section": [half // parts] * (parts - 1) + [half // parts + half % parts]}

    try:
        config.rope_parameters = {k: cut(v) for k, v in rope.items()} if per_layer else cut(rope)
    except Exception:  # noqa: BLE001 - a config with typed fields may refuse sections (its strict dataclass's error)
        pass


def _main_name(model, params) -> str:
    main = getattr(model, "main_input_name", "input_ids")
    main = main[0] if isinstance(main, (list, tuple)) else main  # OneFormer names (pixel values, task inputs)
    if main in params:
        return main
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return required[0] if required else main


def inputs_for(model, kind=None) -> tuple:
    """The names and tensors of the inputs the forward takes, made for its config (token ids, pixels, flattened
    patches with their grid, video, audio, spectrograms, past values of a series), and the keywords fixed: its main
    input, the other inputs it requires, those :data:`WITH` names for its type, decoder ids for an encoder-decoder."""
    config = model.config
    params = inspect.signature(model.forward).parameters
    main = _main_name(model, params)
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n != main
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    ctx = _Context(config, kind, params, torch.Generator().manual_seed(0), {})
    if main == "input_ids" or "input_ids" in params and main not in params:
        ctx.made["input_ids"] = ctx.ids()
    for name in (main, *WITH.get(kind, ()), *required):
        if name not in ctx.made and name in params:
            if not ctx.make(name):
                raise ValueError(f"input {name!r} is not one the zoo makes")
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        text = ctx.text
        ctx.made["decoder_input_ids"] = torch.randint(3, 99 if getattr(text, "vocab_size", 99) >= 99 else 4,
                                                      (BATCH, LENGTH), generator=ctx.g)
    fixed = {k: False for k in ("use_cache",) if k in params}
    return tuple(ctx.made), tuple(ctx.made.values()), fixed


class _Context:
    """What making one model's inputs needs: its config and type, its forward's parameters, one generator and the
    inputs made so far; :meth:`make` adds one input by name (with what goes with it: a grid for patches)."""

    def __init__(self, config, kind, params, g, made):
        self.config, self.kind, self.params, self.g, self.made = config, kind, params, g, made
        self.text = config.get_text_config() if hasattr(config, "get_text_config") else config
        self.vision = getattr(config, "vision_config", None) or config

    def ids(self):
        vocab = getattr(self.text, "vocab_size", 99) or 99
        return torch.randint(3, max(4, min(vocab, 99)), (BATCH, LENGTH), generator=self.g)

    def make(self, name) -> bool:
        """Make input ``name`` into :attr:`made`; False where the zoo does not know how."""
        config, g, params = self.config, self.g, self.params
        if name.endswith("input_ids"):  # token ids, and InstructBLIP's Q-Former ids beside them
            self.made[name] = self.ids()
        elif name in ("pixel_values", "hidden_states") and ({"grid_thw", "image_grid_thw"} & set(params)):
            self.made.update(_patches(self.vision, self.kind, g, params))
        elif name == "pixel_values" and self.kind in VIDEO_PIXELS or name == "pixel_values_videos":
            self.made[name] = _video(self.vision, g)
        elif name == "pixel_values":
            h, w = IMAGE_SIZE.get(self.kind) or _size(getattr(self.vision, "image_size", 32))
            image = (getattr(self.vision, "num_channels", 3), h, w)
            pair = (2,) if self.kind in IMAGE_PAIRS else ()
            self.made[name] = torch.randn(BATCH, *pair, *image, generator=g)
        elif name == "input_values":
            shape = (BATCH, getattr(config, "audio_channels", 1) or 1) if self.kind in AUDIO_CHANNELS else (BATCH,)
            self.made[name] = torch.randn(*shape, SAMPLES, generator=g)
        elif name == "input_features":
            self.made.update(_features(config, self.kind, params, g))
        elif name == "past_values":
            self.made.update(_series(config, params, g))
        elif name == "bbox":  # layout models: one box per token, (x0, y0, x1, y1) in 0..1000, ordered
            corner = torch.randint(0, 500, (BATCH, LENGTH, 2), generator=g)
            box = torch.cat([corner, corner + torch.randint(1, 500, (BATCH, LENGTH, 2), generator=g)], -1)
            self.made[name] = box / 1000 if self.kind in FLOAT_BOXES else box
        else:
            return False
        return True


def _size(size) -> tuple:
    """(height, width) of a config's image size, an int or a pair."""
    return tuple(size[:2]) if isinstance(size, (list, tuple)) else (size, size)


def _features(config, kind, params, g) -> dict:
    """Spectrogram features (the layout :data:`FRAMES_FIRST` says), with an all-ones mask where one is required."""
    frames = 2 * getattr(config, "max_source_positions", 32)
    size = next((getattr(c, a) for c in (config, getattr(config, "encoder_config", None), getattr(
        config, "audio_config", None)) if c is not None for a in FEATURE_SIZE
                 if isinstance(getattr(c, a, None), int)), SMALL["num_mel_bins"])
    shape = (BATCH, frames, size) if kind in FRAMES_FIRST else (BATCH, size, frames)
    made = {"input_features": torch.randn(*shape, generator=g)}
    for mask in ("input_features_mask", "attention_mask"):
        if mask in params and params[mask].default is inspect.Parameter.empty:
            made[mask] = torch.ones(BATCH, frames, dtype=torch.long)
    return made


def _patches(vision, kind, g, params) -> dict:
    """Flattened patches of BATCH one-frame images and their (t, h, w) grids, h = w = 2 x the spatial merge size
    (so the merger's windows tile each image)."""
    merge = getattr(vision, "spatial_merge_size", None) or (getattr(vision, "merge_kernel_size", None) or (2,))[0]
    side, patch = 2 * merge, getattr(vision, "patch_size", 14)
    channels = getattr(vision, "in_channels", None) or getattr(vision, "num_channels", 3)
    temporal = getattr(vision, "temporal_patch_size", 1) or 1
    n = BATCH * side * side
    shape = (n, channels, patch, patch) if kind in PATCHES_AS_IMAGES else (n, channels * temporal * patch * patch)
    main = "hidden_states" if "hidden_states" in params else "pixel_values"
    grid = "image_grid_thw" if "image_grid_thw" in params else "grid_thw"
    made = {main: torch.randn(*shape, generator=g), grid: torch.tensor([[1, side, side]] * BATCH)}
    if "merge_sizes" in params:
        made["merge_sizes"] = torch.tensor([merge] * BATCH)
    return made


def _video(vision, g) -> torch.Tensor:
    """(batch, frames, channels, size, size): the config's number of frames (else two tubelets of them) at its image
    size."""
    size = getattr(vision, "crop_size", None) or getattr(vision, "image_size", 32)
    size = size[0] if isinstance(size, (list, tuple)) else size
    frames = getattr(vision, "num_frames", None) or 2 * (getattr(vision, "tubelet_size", 1) or 1)
    return torch.randn(BATCH, frames, getattr(vision, "num_channels", 3), size, size, generator=g)


def _series(config, params, g) -> dict:
    """A batch of past values (context plus the largest lag), their time features and an all-observed mask."""
    lags = getattr(config, "lags_sequence", None) or [0]
    length = (getattr(config, "context_length", None) or FORECAST["context_length"]) + max(lags)
    if getattr(config, "patch_length", None):  # patched forecasters (TimesFM): whole patches
        length = 2 * config.patch_length
    inputs = getattr(config, "input_size", 1) or 1
    shape = (BATCH, length) if inputs == 1 else (BATCH, length, inputs)
    made = {"past_values": torch.randn(*shape, generator=g)}
    if "past_time_features" in params:
        made["past_time_features"] = torch.randn(BATCH, length, getattr(config, "num_time_features", 1),
                                                 generator=g)
    if "past_observed_mask" in params:
        made["past_observed_mask"] = torch.ones(shape)
    if "future_time_features" in params and params["future_time_features"].default is inspect.Parameter.empty:
        made["future_time_features"] = torch.randn(BATCH, config.prediction_length,
                                                   getattr(config, "num_time_features", 1), generator=g)
    for name in ("past_values_padding",):  # nothing padded
        if name in params and params[name].default is inspect.Parameter.empty:
            made[name] = torch.zeros(BATCH, length)
    if "freq" in params and params["freq"].default is inspect.Parameter.empty:
        made["freq"] = torch.zeros(BATCH, 1, dtype=torch.long)  # TimesFM's high-frequency class
    return made
