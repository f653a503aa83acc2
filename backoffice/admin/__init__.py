"""Every ModelAdmin of Solaris, one module per app whose models it shows.

Django's admin autodiscovery imports this package (backoffice's `admin`); the domain apps have no
admin module of their own, so they never import the staff UI.
"""

from backoffice.admin import accounts, credits, grant_requests, notifications, pix, proxy

__all__ = ["accounts", "credits", "grant_requests", "notifications", "pix", "proxy"]
