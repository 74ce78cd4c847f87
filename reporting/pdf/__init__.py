"""PDF builders of the reporting app: pure functions of plain data (no database).

`performance_pdf(PerformanceInput)`, `statement_pdf(Statement)` and `table_report_pdf(...)` for
the tabular compliance reports; `common` holds the fonts, styles and table rules they share.
"""
