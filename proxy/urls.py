from django.urls import path

from proxy import views

urlpatterns = [
    path("models", views.models, name="proxy-models"),
    path("chat/completions", views.chat_completions, name="proxy-chat-completions"),
]
