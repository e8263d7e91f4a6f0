"""agents.vla.config: validation, pretrained folder checks, preset backbone shapes."""

import pytest

from agents.vla.config import FlowStart, Head, Preset, VLAConfig, backbone_config, check_pretrained

IDS = dict(pad=0, bos=2, eos=3, vision_start=4, vision_end=5, image_pad=6, video_pad=7)


def test_defaults_and_enums():
    config = VLAConfig(head="flow", flow_start="history")
    assert config.head is Head.FLOW and config.preset is Preset.TINY and config.flow_start is FlowStart.HISTORY
    assert config.start_time == 0.6 and VLAConfig().start_time == 1.0


@pytest.mark.parametrize("field, value, message", [
    ("head", "diffusion", "valid heads"),
    ("image_height", 30, "image_height=30: must be a positive multiple of 28"),
    ("flow_steps", 0, "flow_steps=0"),
    ("temperature", 0.0, "temperature=0.0"),
    ("flow_width", 130, "divisible by flow_heads"),
    ("flow_start_t", 0.0, "flow_start_t=0.0"),
    ("action_scale", (1.0, 0.0, 1.0), "action_scale"),
])
def test_bad_values_are_named(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        VLAConfig(**{field: value})


def test_pretrained_folder_errors_name_path_and_files(tmp_path):
    with pytest.raises(ValueError, match=r"pretrained='.*empty': missing config.json, model.safetensors or"):
        (tmp_path / "empty").mkdir()
        VLAConfig(pretrained=str(tmp_path / "empty"))
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="missing model.safetensors or model.safetensors.index.json"):
        check_pretrained(str(tmp_path / "config_only"))
    with pytest.raises(ValueError, match="not a folder"):
        VLAConfig(pretrained=str(tmp_path / "nowhere"))


def test_preset_shapes():
    tiny = backbone_config("tiny", 300, IDS)
    assert (tiny.text_config.hidden_size, tiny.text_config.num_hidden_layers, tiny.vision_config.depth) == (128, 2, 2)
    assert tiny.text_config.vocab_size == 300 and tiny.image_token_id == 6
    small = backbone_config("small", 300, IDS)
    assert (small.text_config.hidden_size, small.text_config.num_hidden_layers) == (256, 4)
    big = backbone_config(Preset.QWEN2_5_VL_3B, 300, IDS)
    text, vision = big.text_config, big.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (2048, 36, 16, 2)
    assert (vision.depth, vision.hidden_size, vision.out_hidden_size) == (32, 1280, 2048)
    assert text.vocab_size == 151936 and big.tie_word_embeddings


def test_tiny_backbone_instantiates_at_about_a_million_parameters():
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration(backbone_config("tiny", 600, IDS))
    assert 0.4e6 < sum(p.numel() for p in model.parameters()) < 1.5e6
