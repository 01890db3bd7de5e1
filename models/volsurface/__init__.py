"""Volatility surfaces: raw SVI slices, SSVI, static-arbitrage checks, chain loading and charts."""

from models.volsurface.arbitrage import ArbitrageReport, check_surface, durrleman_g, g_numeric
from models.volsurface.chain import OptionChain, chain_from_ccxt, load_deribit_csv, parse_deribit_csv
from models.volsurface.evaluate import ChainScore, evaluate_chain, score_fit, summarise
from models.volsurface.readers import detect_format, parse_chains, read_chain, read_chains
from models.volsurface.ssvi import SSVIFit, SSVIParams, fit_ssvi, ssvi_w
from models.volsurface.surface import FitQuality, Slice, SurfaceFit, VolSurface, fit_surface
from models.volsurface.svi import SVIFit, SVIParams, fit_svi, svi_g, svi_w

__all__ = [
    "ArbitrageReport",
    "ChainScore",
    "FitQuality",
    "OptionChain",
    "SSVIFit",
    "SSVIParams",
    "SVIFit",
    "SVIParams",
    "Slice",
    "SurfaceFit",
    "VolSurface",
    "chain_from_ccxt",
    "check_surface",
    "detect_format",
    "durrleman_g",
    "evaluate_chain",
    "fit_ssvi",
    "fit_surface",
    "fit_svi",
    "g_numeric",
    "load_deribit_csv",
    "parse_chains",
    "parse_deribit_csv",
    "read_chain",
    "read_chains",
    "score_fit",
    "ssvi_w",
    "summarise",
    "svi_g",
    "svi_w",
]
