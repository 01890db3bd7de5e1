"""News sentiment: the offline path (lexicon + MiniLM classifier), the LLM path, and the per-symbol index."""

from knowledge.sentiment.index import SymbolSentiment, sentiment_index, sentiment_series
from knowledge.sentiment.lexicon import lexicon_label, lexicon_score
from knowledge.sentiment.offline import LABELS, OfflineSentiment, SentimentResult, get_offline

__all__ = [
    "LABELS",
    "OfflineSentiment",
    "SentimentResult",
    "SymbolSentiment",
    "get_offline",
    "lexicon_label",
    "lexicon_score",
    "sentiment_index",
    "sentiment_series",
]
