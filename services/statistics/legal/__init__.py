"""The legal-affairs body (法制工作机构): the review queue and the major-case filings."""
