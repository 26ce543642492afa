"""The rendering base that the comparison report (`analysis`) and the probe report (`probe`) share.

`blocks`: a document as headings, paragraphs, tables, bullets and figures,
rendered to Markdown and to self-contained HTML; `formatting`: numbers and
intervals as the reports print them; `figures`: matplotlib figures without
global state, written atomically. JSON cleaning is `rundir.disk.json_ready`.
"""
