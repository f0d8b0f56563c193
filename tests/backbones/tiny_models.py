"""Tiny configs of every supported architecture, each with its checkpoints' feature extractor.

conftest saves random models built from them, so tests load through the real ``from_pretrained``.
"""

from __future__ import annotations

from collections.abc import Callable

from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    HubertConfig,
    PretrainedConfig,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
)

SR = 16000
# Two clips of different lengths: 1.0 s and 0.55 s.
LENGTHS = (16000, 8800)
CONV = {
    "conv_dim": (16,) * 7,
    "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
    "conv_stride": (5, 2, 2, 2, 2, 2, 2),
}
SMALL = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def _waveform(config_cls: type[PretrainedConfig], norm: str, attention_mask: bool) -> Callable:
    def build():
        config = config_cls(
            **SMALL,
            **CONV,
            feat_extract_norm=norm,
            do_stable_layer_norm=norm == "layer",
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,  # oneDNN's bf16 conv1d is wrong below 16 per group
        )
        extractor = Wav2Vec2FeatureExtractor(
            sampling_rate=SR, do_normalize=True, return_attention_mask=attention_mask
        )
        return config, extractor

    return build


def _ast():
    # The real 128-bin, 16x16-patch, stride-10 geometry, padded to 2.56 s instead of 10.24 s.
    config = ASTConfig(**SMALL, patch_size=16, frequency_stride=10, time_stride=10, max_length=256)
    return config, ASTFeatureExtractor(
        num_mel_bins=config.num_mel_bins, max_length=config.max_length
    )


def whisper_config(max_source_positions: int) -> WhisperConfig:
    """A 2-layer, 32-wide Whisper with the real 80-mel front end and `max_source_positions`
    encoder frames (1500 = the real 30 s window; 100 = 2 s)."""
    return WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=max_source_positions,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )


def _whisper():
    # 2 s windows instead of 30 s: 100 frames at 50 Hz.
    return whisper_config(100), WhisperFeatureExtractor(feature_size=80, chunk_length=2)


# name -> (builder, expected model class); "wav2vec2" / "hubert" mirror the group-norm base
# checkpoints (no attention mask), "wav2vec2_lv60" / "wavlm" the layer-norm ones (attention mask).
BUILDERS: dict[str, tuple[Callable, str]] = {
    "wav2vec2": (_waveform(Wav2Vec2Config, "group", False), "Wav2Vec2Model"),
    "wav2vec2_lv60": (_waveform(Wav2Vec2Config, "layer", True), "Wav2Vec2Model"),
    "hubert": (_waveform(HubertConfig, "group", False), "HubertModel"),
    "wavlm": (_waveform(WavLMConfig, "layer", True), "WavLMModel"),
    "wavlm_base_plus": (_waveform(WavLMConfig, "group", True), "WavLMModel"),
    "ast": (_ast, "ASTModel"),
    "whisper": (_whisper, "WhisperModel"),
}
