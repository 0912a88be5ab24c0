"""The pages' words in French and English, and the language a request gets.

The language is, in order: ``?lang=`` (the switch on every page) or the form's ``lang``
field, the ``umacct-lang`` cookie the switch leaves, the browser's ``Accept-Language``, then
French. The core speaks English; the password policy's reasons are put into French here,
by their fixed shapes (an unknown one is shown as the core wrote it); those of addresses and
extension requests in ``umacct.web.reasons``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

MESSAGES: dict[str, dict[str, str]] = {
    "fr": {
        "site": "Compte informatique",
        "skip": "Aller au contenu",
        "switch": "English",
        "switch_lang": "en",
        "home_title": "1ère connexion / problème de connexion",
        "home_intro": "Saisissez votre adresse mail institutionnelle. Un lien vous sera envoyé : "
        "un lien d'activation à votre adresse personnelle si votre compte n'est pas encore "
        "activé, sinon un lien de réinitialisation à votre adresse de secours.",
        "address": "Adresse mail institutionnelle",
        "address_hint": "Par exemple prenom.nom@{domain}",
        "next": "Suivant",
        "sent_title": "Demande enregistrée",
        "sent": "Si ce compte existe, un lien a été envoyé à son adresse de secours (ou, pour "
        "un compte pas encore activé, à l'adresse personnelle). Le lien est valable peu de "
        "temps et ne sert qu'une fois.",
        "sent_spam": "Si vous ne recevez rien, vérifiez votre dossier de courriers indésirables "
        "(spams), puis contactez l'assistance.",
        "activation_title": "Activer votre compte",
        "activation_intro": "Choisissez le mot de passe de votre compte.",
        "reset_title": "Choisir un nouveau mot de passe",
        "reset_intro": "Choisissez le nouveau mot de passe de votre compte.",
        "account": "Compte",
        "password": "Nouveau mot de passe",
        "password_hint": "Au moins {min} caractères. Une phrase de plusieurs mots est plus "
        "facile à retenir et plus sûre. Ni votre nom ni votre identifiant, ni un mot de "
        "passe courant.",
        "password2": "Confirmez le mot de passe",
        "password2_hint": "Saisissez-le une seconde fois.",
        "submit_password": "Enregistrer le mot de passe",
        "activated_title": "Votre compte est activé",
        "activated": "Le compte {account} est actif. Connectez-vous à l'ENT avec cette "
        "adresse et le mot de passe que vous venez de choisir.",
        "recovery_set": "Votre adresse de secours est {address} : c'est là que vous recevrez "
        "un lien si vous oubliez votre mot de passe. Vous pouvez la changer dans l'ENT "
        "(vignette « Compte informatique »).",
        "reset_done_title": "Mot de passe changé",
        "reset_done": "Le mot de passe du compte {account} a été changé. Connectez-vous à "
        "l'ENT avec votre nouveau mot de passe. Un message en informe votre adresse de secours.",
        "go_ent": "Se connecter à l'ENT",
        "confirm_recovery_title": "Confirmer l'adresse de secours",
        "confirm_recovery_intro": "Le compte {account} demande que {address} devienne son "
        "adresse de secours (utilisée en cas de perte du mot de passe).",
        "confirm_forwarding_title": "Confirmer la redirection",
        "confirm_forwarding_intro": "Le compte {account} demande que son courrier soit "
        "redirigé vers {address}.",
        "confirm_button": "Confirmer",
        "confirm_ignore": "Si vous n'êtes pas à l'origine de cette demande, ignorez ce "
        "message : rien ne change sans confirmation.",
        "confirmed_recovery_title": "Adresse de secours enregistrée",
        "confirmed_recovery": "{address} est désormais l'adresse de secours du compte {account}.",
        "confirmed_forwarding_title": "Redirection enregistrée",
        "confirmed_forwarding": "Le courrier du compte {account} est désormais redirigé vers "
        "{address}.",
        "error_title": "Erreur",
        "error_prefix": "Erreur : ",
        "errors_intro": "Le formulaire contient une erreur :",
        "link_invalid_title": "Lien non valable",
        "link_invalid": "Ce lien n'est pas valable : il a déjà servi, a été remplacé par un "
        "plus récent, ou est incomplet.",
        "link_expired_title": "Lien expiré",
        "link_expired": "Ce lien a expiré. Demandez-en un nouveau.",
        "ask_new_link": "Demander un nouveau lien",
        "no_longer_applies": "Ce lien ne s'applique plus à ce compte. Contactez l'assistance.",
        "mismatch": "Les deux mots de passe saisis sont différents.",
        "required": "Ce champ est obligatoire.",
        "too_long": "Cette valeur est trop longue.",
        "csrf_title": "Formulaire expiré",
        "csrf": "Ce formulaire a expiré ou ne vient pas de cette page. Rechargez la page et "
        "recommencez.",
        "rate_title": "Trop de demandes",
        "rate": "Trop de demandes en peu de temps. Réessayez dans une heure.",
        "unavailable_title": "Service indisponible",
        "unavailable": "Le service est momentanément indisponible. Réessayez dans quelques "
        "minutes.",
        "failure_title": "Erreur",
        "failure": "Une erreur est survenue. Réessayez plus tard ; si elle persiste, "
        "contactez l'assistance.",
        "not_found_title": "Page introuvable",
        "not_found": "Cette page n'existe pas.",
        "too_large_title": "Formulaire trop volumineux",
        "too_large": "Ce formulaire est trop volumineux ou joint un fichier : les formulaires "
        "de ce site ne prennent que du texte. Rechargez la page et recommencez.",
        "bad_form": "Ce formulaire n'a pas pu être lu. Rechargez la page et recommencez.",
        "refused_title": "Refusé",
        "bad_request_title": "Demande incorrecte",
        "manage": "Gérer mon compte",
        "login_title": "Gestion du compte : connexion",
        "login_intro": "Connectez-vous avec votre adresse mail institutionnelle et votre mot "
        "de passe.",
        "password_login": "Mot de passe",
        "login_button": "Se connecter",
        "login_failed": "Adresse ou mot de passe incorrect, ou compte qui ne peut pas se "
        "connecter.",
        "forgot": "Mot de passe oublié, 1ère connexion : recevoir un lien",
        "account_title": "Gestion du compte",
        "account_intro": "Compte {account}",
        "change_password_title": "Modifier votre mot de passe",
        "current_password": "Mot de passe actuel",
        "change_password_button": "Modifier le mot de passe",
        "wrong_current": "Le mot de passe actuel est incorrect.",
        "password_changed": "Votre mot de passe a été modifié ; votre adresse de secours en "
        "est informée. Vos autres sessions sont fermées.",
        "recovery_title": "Adresse mail de secours",
        "recovery_current": "Adresse actuelle : {address}",
        "recovery_none": "Aucune adresse de secours : ajoutez-en une, c'est elle qui permet de "
        "retrouver l'accès en cas d'oubli du mot de passe.",
        "new_recovery": "Nouvelle adresse de secours",
        "recovery_hint": "Une adresse personnelle, hors de l'université. Un lien de "
        "confirmation y sera envoyé.",
        "send_link": "Envoyer le lien de confirmation",
        "link_sent_to": "Un lien de confirmation a été envoyé à {address}. Rien ne change tant "
        "qu'il n'a pas été ouvert.",
        "forwarding_title": "Redirection des mails",
        "forwarding_current": "Votre courrier est redirigé vers {address}.",
        "forwarding_none": "Votre courrier n'est pas redirigé.",
        "new_forwarding": "Rediriger vers",
        "forwarding_hint": "L'adresse où recevoir votre courrier. Un lien de confirmation y "
        "sera envoyé.",
        "forwarding_off": "Arrêter la redirection",
        "forwarding_stopped": "La redirection est arrêtée.",
        "address_refused": "Cette adresse ne peut pas être utilisée : {reason}",
        "logout": "Se déconnecter",
        "logged_out": "Vous êtes déconnecté.",
        "staff_title": "Pour les personnels",
        "staff_intro": "Vos données d'annuaire et le niveau antispam de votre messagerie.",
        "directory_title": "Vos données d'annuaire",
        "directory_intro": "Ces informations figurent dans l'annuaire de l'université. Videz "
        "un champ pour retirer sa valeur.",
        "directory_none": "Aucune donnée d'annuaire n'est modifiable ici.",
        "directory_button": "Enregistrer les données d'annuaire",
        "directory_saved": "Vos données d'annuaire sont enregistrées ({names}).",
        "directory_unchanged": "Rien n'a changé : ce sont déjà les valeurs de l'annuaire.",
        "directory_refused": "L'annuaire a refusé ces valeurs : {reason}",
        "value_number": "{label} ({number})",
        "postal_hint": "Une ligne d'adresse par ligne.",
        "attr.telephoneNumber": "Téléphone",
        "attr.mobile": "Téléphone portable",
        "attr.facsimileTelephoneNumber": "Télécopie",
        "attr.roomNumber": "Bureau",
        "attr.title": "Fonction",
        "attr.postalAddress": "Adresse postale",
        "attr.physicalDeliveryOfficeName": "Site",
        "attr.labeledURI": "Page web",
        "hint.telephoneNumber": "Par exemple +33 4 67 14 30 30.",
        "hint.mobile": "Par exemple +33 6 12 34 56 78.",
        "hint.roomNumber": "Par exemple B204.",
        "antispam_title": "Niveau antispam",
        "antispam_intro": "Le filtrage des courriers indésirables (spams) de votre boîte aux "
        "lettres.",
        "antispam_unset": "Aucun niveau n'est choisi : le réglage par défaut de la messagerie "
        "s'applique.",
        "antispam_other": "Le réglage actuel ({value}) n'est aucun des niveaux proposés.",
        "antispam_not_offered": "Le niveau antispam n'est pas proposé sur ce site : pour le "
        "changer, contactez l'assistance.",
        "antispam_legend": "Niveau de filtrage",
        "antispam_button": "Enregistrer le niveau antispam",
        "antispam_saved": "Le niveau antispam est désormais : {level}.",
        "antispam_unchanged": "Le niveau antispam était déjà : {level}.",
        "antispam_choose": "Choisissez un niveau.",
        "antispam_unknown": "Ce niveau n'existe pas : choisissez l'un des niveaux proposés.",
        "current": "(actuel)",
        "level.off": "Désactivé",
        "level.none": "Aucun",
        "level.low": "Faible",
        "level.medium": "Moyen",
        "level.normal": "Normal",
        "level.high": "Élevé",
        "level.strict": "Strict",
        "staff_only_title": "Réservé aux personnels",
        "staff_only": "Cette partie de la gestion du compte est réservée aux personnels.",
        "unmanageable_title": "Compte indisponible",
        "unmanageable": "Ce compte ne peut pas être géré actuellement (verrouillé ou expiré). "
        "Contactez l'assistance.",
        "help": "Aide",
        "home_link": "Accueil",
    },
    "en": {
        "site": "IT account",
        "skip": "Skip to content",
        "switch": "Français",
        "switch_lang": "fr",
        "home_title": "First login / login problem",
        "home_intro": "Type your institutional email address. A link will be sent to you: an "
        "activation link to your personal address if your account is not activated yet, "
        "otherwise a reset link to your recovery address.",
        "address": "Institutional email address",
        "address_hint": "For example firstname.lastname@{domain}",
        "next": "Next",
        "sent_title": "Request received",
        "sent": "If this account exists, a link has been sent to its recovery address (or, "
        "for an account not activated yet, to the personal address). The link is valid for "
        "a short time and works once.",
        "sent_spam": "If nothing arrives, look in your spam folder, then contact the helpdesk.",
        "activation_title": "Activate your account",
        "activation_intro": "Choose the password of your account.",
        "reset_title": "Choose a new password",
        "reset_intro": "Choose the new password of your account.",
        "account": "Account",
        "password": "New password",
        "password_hint": "At least {min} characters. A phrase of several words is easier to "
        "remember and safer. Not your name nor your identifier, nor a common password.",
        "password2": "Confirm the password",
        "password2_hint": "Type it a second time.",
        "submit_password": "Save the password",
        "activated_title": "Your account is activated",
        "activated": "The account {account} is active. Log in to the ENT with this address "
        "and the password you just chose.",
        "recovery_set": "Your recovery address is {address}: a link goes there if you forget "
        "your password. You can change it in the ENT (tile “IT account”).",
        "reset_done_title": "Password changed",
        "reset_done": "The password of the account {account} has been changed. Log in to the "
        "ENT with your new password. Your recovery address is told by mail.",
        "go_ent": "Log in to the ENT",
        "confirm_recovery_title": "Confirm the recovery address",
        "confirm_recovery_intro": "The account {account} asks that {address} become its "
        "recovery address (used when the password is lost).",
        "confirm_forwarding_title": "Confirm the forwarding",
        "confirm_forwarding_intro": "The account {account} asks that its mail be forwarded "
        "to {address}.",
        "confirm_button": "Confirm",
        "confirm_ignore": "If you did not ask for this, ignore this message: nothing changes "
        "without a confirmation.",
        "confirmed_recovery_title": "Recovery address saved",
        "confirmed_recovery": "{address} is now the recovery address of the account {account}.",
        "confirmed_forwarding_title": "Forwarding saved",
        "confirmed_forwarding": "The mail of the account {account} is now forwarded to {address}.",
        "error_title": "Error",
        "error_prefix": "Error: ",
        "errors_intro": "The form has an error:",
        "link_invalid_title": "Link not valid",
        "link_invalid": "This link is not valid: it was already used, replaced by a newer "
        "one, or is incomplete.",
        "link_expired_title": "Link expired",
        "link_expired": "This link has expired. Ask for a new one.",
        "ask_new_link": "Ask for a new link",
        "no_longer_applies": "This link no longer applies to this account. Contact the helpdesk.",
        "mismatch": "The two passwords typed differ.",
        "required": "This field is required.",
        "too_long": "This value is too long.",
        "csrf_title": "Form expired",
        "csrf": "This form has expired or does not come from this page. Reload the page and "
        "try again.",
        "rate_title": "Too many requests",
        "rate": "Too many requests in a short time. Try again in an hour.",
        "unavailable_title": "Service unavailable",
        "unavailable": "The service is unavailable for a moment. Try again in a few minutes.",
        "failure_title": "Error",
        "failure": "Something went wrong. Try again later; if it goes on, contact the helpdesk.",
        "not_found_title": "Page not found",
        "not_found": "This page does not exist.",
        "too_large_title": "Form too large",
        "too_large": "This form is too large or carries a file: the forms of this site take "
        "text only. Reload the page and try again.",
        "bad_form": "This form could not be read. Reload the page and try again.",
        "refused_title": "Refused",
        "bad_request_title": "Bad request",
        "manage": "Manage my account",
        "login_title": "Account management: log in",
        "login_intro": "Log in with your institutional email address and your password.",
        "password_login": "Password",
        "login_button": "Log in",
        "login_failed": "Wrong address or password, or an account that cannot log in.",
        "forgot": "Forgot your password, first login: get a link",
        "account_title": "Account management",
        "account_intro": "Account {account}",
        "change_password_title": "Change your password",
        "current_password": "Current password",
        "change_password_button": "Change the password",
        "wrong_current": "The current password is wrong.",
        "password_changed": "Your password has been changed; your recovery address is told. "
        "Your other sessions are closed.",
        "recovery_title": "Recovery email address",
        "recovery_current": "Current address: {address}",
        "recovery_none": "No recovery address: add one, it is how you get back in when you "
        "forget your password.",
        "new_recovery": "New recovery address",
        "recovery_hint": "A personal address, outside the university. A confirmation link "
        "will be sent to it.",
        "send_link": "Send the confirmation link",
        "link_sent_to": "A confirmation link has been sent to {address}. Nothing changes until "
        "it is opened.",
        "forwarding_title": "Mail forwarding",
        "forwarding_current": "Your mail is forwarded to {address}.",
        "forwarding_none": "Your mail is not forwarded.",
        "new_forwarding": "Forward to",
        "forwarding_hint": "The address to get your mail at. A confirmation link will be sent "
        "to it.",
        "forwarding_off": "Stop forwarding",
        "forwarding_stopped": "Forwarding is stopped.",
        "address_refused": "This address cannot be used: {reason}",
        "logout": "Log out",
        "logged_out": "You are logged out.",
        "staff_title": "For staff",
        "staff_intro": "Your directory data and the antispam level of your mailbox.",
        "directory_title": "Your directory data",
        "directory_intro": "This information is in the university's directory. Empty a field "
        "to remove its value.",
        "directory_none": "No directory data can be changed here.",
        "directory_button": "Save the directory data",
        "directory_saved": "Your directory data is saved ({names}).",
        "directory_unchanged": "Nothing changed: these are already the directory's values.",
        "directory_refused": "The directory refused these values: {reason}",
        "value_number": "{label} ({number})",
        "postal_hint": "One address line per line.",
        "attr.telephoneNumber": "Telephone",
        "attr.mobile": "Mobile phone",
        "attr.facsimileTelephoneNumber": "Fax",
        "attr.roomNumber": "Office",
        "attr.title": "Job title",
        "attr.postalAddress": "Postal address",
        "attr.physicalDeliveryOfficeName": "Site",
        "attr.labeledURI": "Web page",
        "hint.telephoneNumber": "For example +33 4 67 14 30 30.",
        "hint.mobile": "For example +33 6 12 34 56 78.",
        "hint.roomNumber": "For example B204.",
        "antispam_title": "Antispam level",
        "antispam_intro": "How your mailbox filters unwanted mail (spam).",
        "antispam_unset": "No level is chosen: the mail service's default applies.",
        "antispam_other": "The current setting ({value}) is none of the levels offered.",
        "antispam_not_offered": "The antispam level is not offered on this site: to change "
        "it, contact the helpdesk.",
        "antispam_legend": "Filtering level",
        "antispam_button": "Save the antispam level",
        "antispam_saved": "The antispam level is now: {level}.",
        "antispam_unchanged": "The antispam level already was: {level}.",
        "antispam_choose": "Choose a level.",
        "antispam_unknown": "There is no such level: choose one of the levels offered.",
        "current": "(current)",
        "level.off": "Off",
        "level.none": "None",
        "level.low": "Low",
        "level.medium": "Medium",
        "level.normal": "Normal",
        "level.high": "High",
        "level.strict": "Strict",
        "staff_only_title": "Staff only",
        "staff_only": "This part of account management is for staff only.",
        "unmanageable_title": "Account unavailable",
        "unmanageable": "This account cannot be managed now (locked or expired). "
        "Contact the helpdesk.",
        "help": "Help",
        "home_link": "Home",
    },
}

# --- the extension request (umacct.web.extension, and the account page's section) ---------------

MESSAGES["fr"].update({
    "extension_title": "Prolonger votre compte informatique",
    "extension_section_title": "Prolongation du compte",
    "extension_intro": "Votre compte {account} est maintenu jusqu'au {grace_end} inclus. Votre "
    "profil permet d'en demander la prolongation (reconductible sur demande).",
    "extension_auto": "La prolongation est accordée dès votre demande.",
    "extension_review": "Votre demande sera examinée par l'assistance ; vous recevrez sa "
    "réponse par mail.",
    "extension_button": "Demander la prolongation",
    "extension_waiting": "Votre demande du {date} (n° {id}) attend l'examen de l'assistance.",
    "extension_granted_title": "Prolongation accordée",
    "extension_granted": "Le compte {account} est prolongé jusqu'au {grace_end} inclus. Un "
    "message vous le confirme.",
    "extension_pending_title": "Demande enregistrée",
    "extension_pending": "Votre demande (n° {id}) attend l'examen de l'assistance. Vous "
    "recevrez sa réponse par mail ; d'ici là, le compte reste ouvert jusqu'au {grace_end}.",
    "extension_refused_title": "Prolongation impossible",
    "extension_refused_intro": "La prolongation ne peut pas être demandée :",
    "extension_login": "Se connecter à la gestion du compte",
})  # fmt: skip
MESSAGES["fr"].update({
    "awaiting_title": "Compte pas encore activé",
    "awaiting_intro": "Le compte {account} n'est pas encore activé : choisissez d'abord son mot "
    "de passe. Demandez le lien d'activation (« 1ère connexion ») : il sera envoyé à votre "
    "adresse personnelle.",
    "awaiting_hint": "Le lien d'activation sera envoyé à l'adresse personnelle de ce compte.",
    "awaiting_button": "Recevoir le lien d'activation",
})  # fmt: skip
MESSAGES["en"].update({
    "extension_title": "Extend your IT account",
    "extension_section_title": "Account extension",
    "extension_intro": "Your account {account} is kept until {grace_end} included. Your profile "
    "lets you ask for an extension (renewable on request).",
    "extension_auto": "The extension is granted as soon as you ask.",
    "extension_review": "The helpdesk will review your request; you will get its answer by mail.",
    "extension_button": "Ask for the extension",
    "extension_waiting": "Your request of {date} (no. {id}) is waiting for the helpdesk.",
    "extension_granted_title": "Extension granted",
    "extension_granted": "The account {account} is extended until {grace_end} included. A "
    "message confirms it.",
    "extension_pending_title": "Request received",
    "extension_pending": "Your request (no. {id}) is waiting for the helpdesk. You will get its "
    "answer by mail; meanwhile the account stays open until {grace_end}.",
    "extension_refused_title": "No extension possible",
    "extension_refused_intro": "An extension cannot be asked:",
    "extension_login": "Log in to account management",
})  # fmt: skip
MESSAGES["en"].update({
    "awaiting_title": "Account not activated yet",
    "awaiting_intro": "The account {account} is not activated yet: choose its password first. "
    "Ask for the activation link (“first login”): it will be sent to your personal address.",
    "awaiting_hint": "The activation link will be sent to the personal address of this account.",
    "awaiting_button": "Get the activation link",
})  # fmt: skip

Translate = Callable[..., str]


def translator(lang: str) -> Translate:
    """``t("key", name=value)``: the page's words in ``lang``, with ``{name}`` filled in."""
    table = MESSAGES.get(lang, MESSAGES[DEFAULT_LANGUAGE])

    def t(key: str, **values: object) -> str:
        text = table.get(key) or MESSAGES["en"].get(key) or key
        return text.format(**values) if values else text

    return t


def chosen_language(
    asked: str | None, cookie: str | None, accept_language: str | None
) -> tuple[str, bool]:
    """The page's language, and whether it was asked for now (the switch sets a cookie)."""
    if asked in LANGUAGES:
        return asked, True
    if cookie in LANGUAGES:
        return cookie, False
    return from_accept_language(accept_language or ""), False


def from_accept_language(header: str) -> str:
    """The best of ``LANGUAGES`` for an ``Accept-Language`` header (RFC 9110 weights)."""
    best, best_weight = DEFAULT_LANGUAGE, 0.0
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        weight = 1.0
        match = re.search(r"q\s*=\s*([^;\s]*)", params)
        if match:
            if not re.fullmatch(r"[01](\.[0-9]{0,3})?", match.group(1)):
                continue  # a weight that is not one: the entry is ignored
            weight = float(match.group(1))
        weight -= position * 1e-6  # the first of equal weights wins
        if primary in LANGUAGES and weight > best_weight:
            best, best_weight = primary, weight
    return best


# --- the password policy's reasons, in French ------------------------------------------------

_FRENCH_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^the password is empty$"), "Le mot de passe est vide."),
    (
        re.compile(
            r"^the password is too short: at least (\d+) characters besides spaces, it has (\d+)$"
        ),
        r"Le mot de passe est trop court : au moins \1 caractères hors espaces, il en a \2.",
    ),
    (
        re.compile(r"^the password is too long: (\d+) characters, at most (\d+)$"),
        r"Le mot de passe est trop long : \1 caractères, au plus \2.",
    ),
    (
        re.compile(r"^the password is in a list of commonly used passwords$"),
        "Ce mot de passe figure dans une liste de mots de passe courants.",
    ),
    (
        re.compile(r"^the password is a commonly used password with digits or symbols added$"),
        "C'est un mot de passe courant auquel on a ajouté des chiffres ou des symboles.",
    ),
    (
        re.compile(r"^the password is one short sequence repeated \(like abcabcabc\)$"),
        "Le mot de passe répète une courte séquence (comme abcabcabc).",
    ),
    (
        re.compile(r"^the password is a run of consecutive characters \(like abcdef or 98765\)$"),
        "Le mot de passe est une suite de caractères consécutifs (comme abcdef ou 98765).",
    ),
    (re.compile(r"^the password is only spaces$"), "Le mot de passe n'est fait que d'espaces."),
    (
        re.compile(r"^the password is only combining marks.*$"),
        "Le mot de passe n'est fait que de signes diacritiques, sans lettre pour les porter.",
    ),
    (
        re.compile(
            r"^the password contains (.+) \((U\+[0-9A-F]{4,6})\); use visible characters only$"
        ),
        r"Le mot de passe contient un caractère invisible ou de contrôle (\2) : "
        "n'utilisez que des caractères visibles.",
    ),
    (
        re.compile(r"^the password contains (.+) \((.+)\)$"),
        r"Le mot de passe contient votre nom ou votre identifiant (\2).",
    ),
    (
        re.compile(r"^the new password is the current one$"),
        "Le nouveau mot de passe est l'actuel.",
    ),
]


def password_reason(reason: str, lang: str) -> str:
    """The policy's refusal in the page's language."""
    if lang != "fr":
        return reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
    for pattern, french in _FRENCH_REASONS:
        if pattern.match(reason):
            return pattern.sub(french, reason)
    return reason


# --- the directory values' refusals (umacct.services.staff.check_value), in French ----------

_VALUE_REASONS: list[tuple[str, str, str]] = [
    (
        "control characters and invisible ones",
        "Control characters and invisible ones (line breaks, tabs, bidi overrides, "
        "zero-width characters) are not allowed.",
        "Les caractères de contrôle et les caractères invisibles (tabulations, retours à la "
        "ligne, caractères sans largeur...) ne sont pas acceptés.",
    ),
    (
        "an empty or blank value is not allowed",
        "An empty or blank value is not allowed.",
        "Une valeur vide ou faite d'espaces n'est pas acceptée.",
    ),
    (
        "not a telephone number",
        "Not a telephone number: digits, spaces and + ( ) . - / only, for example "
        "+33 4 67 14 30 30.",
        "Ce n'est pas un numéro de téléphone : chiffres, espaces et + ( ) . - / seulement, "
        "par exemple +33 4 67 14 30 30.",
    ),
    (
        "only ASCII characters are allowed",
        "Only ASCII characters (no accents) are allowed.",
        "Seuls les caractères ASCII (sans accents) sont acceptés.",
    ),
    ("not an integer", "Not a whole number.", "Ce n'est pas un nombre entier."),
    (
        "lines are separated by '$'",
        "No address line may be empty (a '$' separates lines).",
        "Aucune ligne d'adresse ne peut être vide (un « $ » sépare les lignes).",
    ),
    ("too long", "This value is too long.", "Cette valeur est trop longue."),
]


def value_reason(reason: str, lang: str) -> str:
    """A directory value's refusal (``attr='value': problem``) in the page's language.

    The value is left out (the field shows it); a reason of another shape (the server's
    own) is shown as it is.
    """
    problem = reason.rsplit(": ", 1)[-1]
    for start, english, french in _VALUE_REASONS:
        if problem.startswith(start):
            return french if lang == "fr" else english
    return reason


def plain(values: Mapping[str, object]) -> dict[str, str]:
    """Values as strings, for ``t(..., **values)``."""
    return {key: str(value) for key, value in values.items()}
