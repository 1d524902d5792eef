"""The HTML report: one self-contained file of thumbnails, score distributions and duplicates."""

from eat_curate.report.data import ReportData, build_report
from eat_curate.report.page import render_report, write_report

__all__ = ["ReportData", "build_report", "render_report", "write_report"]
