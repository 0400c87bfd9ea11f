from django.db import models
from django.utils.translation import gettext_lazy as _

from chatbots import engine

# Sequences are referenced by their key (not a foreign key) everywhere: the JSON export speaks in keys, and a
# dangling key is then reported by the one flow validator with the same message in the admin and the CLI.
SEQUENCE_KEY_HELP = _("The key of a sequence of this chatbot.")
# What the admin shows for each step kind and input type (engine.STEP_KINDS and INPUT_TYPES are the values).
KIND_LABELS = {"text": _("text"), "image": _("image"), "buttons": _("buttons"), "input": _("input"),
               "set_variable": _("set variable"), "note": _("note"), "escalate": _("escalate"), "goto": _("goto")}
INPUT_TYPE_LABELS = {"text": _("text"), "email": _("email"), "number": _("number")}


class Chatbot(models.Model):
    """A bot flow used by one or more sites; its sequences and steps hang off it."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    pseudonym_template = models.CharField(
        _("pseudonym template"), max_length=200, blank=True,
        help_text=_("Shown to licensed advisors, e.g. {{PRENOM}} ({{SOCIETE}})."))
    welcome_sequence = models.CharField(_("welcome sequence"), max_length=50, default="welcome",
                                        help_text=_("The sequence a new conversation starts with."))
    fallback_sequence = models.CharField(_("fallback sequence"), max_length=50, blank=True,
                                         help_text=_("The sequence run for free text the bot does not expect."))
    # Every change to the flow (chatbot, sequences, steps, buttons) bumps this: it keys the in-process cache.
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("chatbot")
        verbose_name_plural = _("chatbots")

    def __str__(self) -> str:
        return self.name


class Sequence(models.Model):
    """An ordered list of steps, reached from the welcome, a button, a go-to, an escalation's way back."""

    chatbot = models.ForeignKey(Chatbot, verbose_name=_("chatbot"), on_delete=models.CASCADE, related_name="sequences")
    key = models.CharField(_("key"), max_length=50, help_text=_("Lowercase letters, digits, - or _, e.g. menu."))
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("sequence")
        verbose_name_plural = _("sequences")
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["chatbot", "key"], name="chatbots_sequence_unique_key")]

    def __str__(self) -> str:
        return f"{self.chatbot.name} / {self.key}"


class Step(models.Model):
    """One step; which fields matter depends on `kind` (see the help texts and the export format)."""

    KIND_CHOICES = [(kind, KIND_LABELS[kind]) for kind in engine.STEP_KINDS]
    INPUT_TYPE_CHOICES = [(t, INPUT_TYPE_LABELS[t]) for t in engine.INPUT_TYPES]

    sequence = models.ForeignKey(Sequence, verbose_name=_("sequence"), on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(_("position"), default=0)
    kind = models.CharField(_("kind"), max_length=20, choices=KIND_CHOICES)
    text = models.TextField(_("text"), blank=True,
                            help_text=_("text, note, buttons, input: the text ({{VAR}} allowed); "
                                                    "image: the caption; escalate: the message (optional)."))
    image_url = models.CharField(_("image url"), max_length=500, blank=True,
                                 help_text=_("image: an absolute URL or a path such as /media/bot/welcome.png."))
    variable = models.CharField(_("variable"), max_length=50, blank=True,
                                help_text=_("input, set variable: e.g. PRENOM."))
    input_type = models.CharField(_("input type"), max_length=10, choices=INPUT_TYPE_CHOICES, blank=True,
                                  help_text=_("input: how the answer is validated."))
    value = models.TextField(_("value"), blank=True, help_text=_("set variable: the value ({{VAR}} allowed)."))
    target = models.CharField(_("target"), max_length=50, blank=True,
                              help_text=_("go to: The key of a sequence of this chatbot."))
    assign_to = models.CharField(_("assign to"), max_length=150, blank=True,
                                 help_text=_("escalate: the username of the advisor to assign, optional."))
    back_label = models.CharField(_("back label"), max_length=100, blank=True,
                                  help_text=_('escalate: the back-to-bot button, e.g. "Back to chatbot", optional.'))
    return_to = models.CharField(_("return to"), max_length=50, blank=True,
                                 help_text=_("escalate: where the back-to-bot button returns. "
                                                             "The key of a sequence of this chatbot."))

    class Meta:
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.position}"


class Button(models.Model):
    """A button of the sequence's buttons step (a valid sequence has at most one, as its last step)."""

    sequence = models.ForeignKey(Sequence, verbose_name=_("sequence"), on_delete=models.CASCADE, related_name="buttons")
    key = models.CharField(_("id"), max_length=40, blank=True,
                           help_text=_("Stable id within the chatbot, e.g. b-3; left blank, one is assigned."))
    position = models.PositiveIntegerField(_("position"), default=0)
    label = models.CharField(_("label"), max_length=100)
    target = models.CharField(_("target"), max_length=50, help_text=SEQUENCE_KEY_HELP)

    class Meta:
        verbose_name = _("button")
        verbose_name_plural = _("buttons")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.label
