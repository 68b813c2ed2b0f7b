from django.urls import path

from gavel.legacy import apis

urlpatterns = [
    path(
        "legacy/listings/", apis.ImportedListingListApi.as_view(), name="legacy-imported-listings"
    ),
]
