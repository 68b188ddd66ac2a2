from .caption_decoder import CaptionDecoder
