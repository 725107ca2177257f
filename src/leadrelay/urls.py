from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from leadrelay.api import api
from leadrelay.core.views import healthz
from leadrelay.leads.views import (
    lead_form,
    lead_form_embed,
    lead_form_thanks,
    suppression_upload,
)
from leadrelay.portals import buyer_views
from leadrelay.portals import money_views as money
from leadrelay.portals import views as portal
from leadrelay.postbacks import views as postbacks
from leadrelay.reporting import subscription_views
from leadrelay.reporting import views as reporting_views
from leadrelay.tracking.views import (
    click_redirect,
    conversion_pixel,
    conversion_postback,
    postback_settings,
)

admin.site.site_header = "leadrelay network admin"
admin.site.site_title = "leadrelay admin"

# `<id:…>` (registered by core/apps.py): a row id, 1 to 2**63 - 1; a longer or larger
# number is a 404, not a lookup.
urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("c/<str:code>", click_redirect, name="click"),
    path("postback", conversion_postback, name="postback"),
    path("p/conversion.gif", conversion_pixel, name="conversion-pixel"),
    path("f/<id:offer_id>/", lead_form, name="lead-form"),
    path("f/<id:offer_id>/thanks", lead_form_thanks, name="lead-form-thanks"),
    path("f/<id:offer_id>/embed.js", lead_form_embed, name="lead-form-embed"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", portal.home, name="home"),
    path("portal/", portal.dashboard, name="portal-home"),
    path("portal/switch/<id:org_id>", portal.organization_switch, name="portal-switch"),
    path("portal/offers/", portal.offers, name="portal-offers"),
    path("portal/offers/<id:offer_id>/", portal.offer_detail, name="portal-offer"),
    path("portal/offers/<id:offer_id>/apply", portal.offer_apply, name="portal-offer-apply"),
    path("portal/offers/<id:offer_id>/links", portal.link_create, name="portal-link-create"),
    path("portal/access/<id:access_id>", portal.access_decide, name="portal-access-decide"),
    path("portal/links/", portal.links, name="portal-links"),
    path("portal/leads/", portal.leads, name="portal-leads"),
    path("portal/leads/<id:lead_id>/review", portal.lead_review, name="portal-lead-review"),
    path("portal/leads/review", portal.lead_review, name="portal-leads-review"),
    path("portal/api-keys/", portal.api_keys, name="portal-api-keys"),
    path("portal/postbacks/", postbacks.postbacks, name="portal-postbacks"),
    path(
        "portal/postbacks/<id:postback_id>/delete",
        postbacks.postback_delete,
        name="portal-postback-delete",
    ),
    path("portal/postback-key/", postback_settings, name="portal-postback-key"),
    path("portal/suppression/", suppression_upload, name="portal-suppression"),
    path("portal/attribution/", reporting_views.attribution, name="portal-attribution"),
    path("portal/quality/", reporting_views.quality, name="portal-quality"),
    path("portal/reports/email/", subscription_views.report_email, name="portal-report-email"),
    path(
        "reports/unsubscribe/<str:token>",
        subscription_views.report_unsubscribe,
        name="report-unsubscribe",
    ),
    path("portal/reports/", reporting_views.reports, name="portal-reports"),
    path(
        "portal/reports/export.csv",
        reporting_views.report_export,
        {"extension": "csv"},
        name="portal-report-csv",
    ),
    path(
        "portal/reports/export.xlsx",
        reporting_views.report_export,
        {"extension": "xlsx"},
        name="portal-report-xlsx",
    ),
    path("portal/money/", money.money, name="portal-money"),
    path("portal/money/payments", money.payment_record, name="portal-payment-record"),
    path("portal/money/adjustments", money.adjustment_post, name="portal-adjustment"),
    path("portal/payouts/", money.payout_runs, name="portal-payout-runs"),
    path("portal/payouts/<id:run_id>/", money.payout_run, name="portal-payout-run"),
    path("portal/payouts/<id:run_id>.csv", money.payout_run_export, name="portal-payout-run-csv"),
    path("portal/statements/", money.statements, name="portal-statements"),
    path("portal/statements/<id:line_id>/", money.statement, name="portal-statement"),
    path("portal/invoices/", money.invoices, name="portal-invoices"),
    path("portal/invoices/<id:invoice_id>/", money.invoice, name="portal-invoice"),
    path("portal/invoices/<id:invoice_id>.pdf", money.invoice_download, name="portal-invoice-pdf"),
    path("portal/leads/<id:lead_id>/take-back", money.lead_take_back, name="portal-lead-take-back"),
    path("portal/buyers/", buyer_views.buyers, name="portal-buyers"),
    path("portal/buyers/new", buyer_views.buyer_new, name="portal-buyer-new"),
    path("portal/buyers/<id:buyer_id>/", buyer_views.buyer_detail, name="portal-buyer"),
    path("portal/buyers/<id:buyer_id>/edit", buyer_views.buyer_edit, name="portal-buyer-edit"),
    path("portal/buyers/<id:buyer_id>/caps", buyer_views.buyer_caps, name="portal-buyer-caps"),
    path(
        "portal/buyers/<id:buyer_id>/secrets",
        buyer_views.buyer_secrets,
        name="portal-buyer-secrets",
    ),
    path(
        "portal/buyers/<id:buyer_id>/returns",
        buyer_views.buyer_return_file,
        name="portal-buyer-return-file",
    ),
    path("portal/buyer-returns/", buyer_views.buyer_returns, name="portal-buyer-returns"),
    path(
        "portal/buyer-returns/<id:return_id>/review",
        buyer_views.buyer_return_review,
        name="portal-buyer-return-review",
    ),
]

if settings.LEADRELAY_BENCH_ENDPOINTS:
    from leadrelay.core.bench_views import bench_echo

    urlpatterns.append(path("bench/echo", bench_echo, name="bench-echo"))
