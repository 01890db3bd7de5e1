"""Volatility surfaces: raw SVI slices, SSVI, static-arbitrage checks, chain loading and charts."""

from models.volsurface.arbitrage import ArbitrageReport, check_surface, durrleman_g, g_numeric
from models.volsurface.chain import OptionChain, chain_from_ccxt, load_deribit_csv, parse_deribit_csv
from models.volsurface.ssvi import SSVIFit, SSVIParams, fit_ssvi, ssvi_w
from models.volsurface.surface import FitQuality, Slice, SurfaceFit, VolSurface, fit_surface
from models.volsurface.svi import SVIFit, SVIParams, fit_svi, svi_g, svi_w

__all__ = [
    "ArbitrageReport",
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
    "durrleman_g",
    "fit_ssvi",
    "fit_surface",
    "fit_svi",
    "g_numeric",
    "load_deribit_csv",
    "parse_deribit_csv",
    "ssvi_w",
    "svi_g",
    "svi_w",
]
