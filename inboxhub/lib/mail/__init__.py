"""The mail library: parsing, forwarded-mail detection, sender authentication, DNS records, SMTP DATA.

Plain Python on the standard library's `email` package and a few mail
libraries; it reads Django settings but never models or any app (`make lint`
holds it to that), so the ingress, the pipeline and `inspect_email` share it.
"""
