"""Self-contained HTML reports about datasets and evaluation results, and the pieces they are built from.

`html` (page skeleton, escaping, tables, data URIs), `plots` (matplotlib PNG figures), `thumbnails`
(frame strips written as WebP files beside a page), `gallery` (a filterable table of clips), and the
pages themselves: `explore_page` (a dataset) and `report_page` (an evaluation run). Every page works
offline: CSS and scripts are inline, plots are PNG data URIs, thumbnails are relative files.
"""
