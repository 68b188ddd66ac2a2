"""The names of the fields of a batch and of the encoded inputs of retrieval, and the
default input lengths.

Every layer reads these (datasets build them, frameworks and the exported graphs take
them), so they live in a module that imports nothing.
"""

# A caption's input: int64 [B, T] each.
TEXT_KEYS = ("text_ids", "token_type_ids", "text_mask")
# A video's input: image_feat [B, V, Dv], image_loc [B, V, 5], image_mask [B, V],
# action_feat [B, A, Da], action_mask [B, A].
VIDEO_KEYS = ("image_feat", "image_loc", "image_mask", "action_feat", "action_mask")
# A caption to generate (captioning): int64 [B, L] = [CLS] pieces [SEP] [PAD]...
CAPTION_KEY = "caption_ids"

# An encoded caption: TextPrefix(hidden, mask, qkv).
TEXT_FIELDS = ("text_hidden", "text_mask_f", "text_q", "text_k", "text_v")
# An encoded video: VideoInputs without the action stream itself (scoring reads only its
# queries, stacked as [B, connections, A, Hb], and its pooled output).
VIDEO_FIELDS = ("region", "region_mask", "region_q", "region_k", "region_v", "to_text_k", "to_text_v",
                "action_queries", "pooled_action")

# The default longest inputs (the released model's): caption tokens T, region slots V (the
# global region included), action slots A. Datasets, pipelines and exports default to these.
MAX_SEQ_LENGTH, MAX_REGION_NUM, MAX_ACTION_NUM = 36, 36, 5
DEFAULT_LIMITS = {"max_seq_length": MAX_SEQ_LENGTH, "max_region_num": MAX_REGION_NUM, "max_action_num": MAX_ACTION_NUM}
