"""Emails in lower case (and the usernames that copy them; another username is kept), the
one form sign-in looks them up in since ``GavelUserManager.normalize_email`` lowers the whole
address: a member created before with capitals in the part before the @ (``createsuperuser``,
the admin) could no longer sign in. A row whose lower-case form another member already has is
left as it is (two accounts for one address: staff decide)."""

from django.db import migrations

LOWER = """
UPDATE users_user
SET email = lower(email),
    username = CASE WHEN username = email THEN lower(username) ELSE username END
WHERE email <> lower(email)
  AND lower(email) IN (SELECT lower(email) FROM users_user GROUP BY lower(email)
                       HAVING count(*) = 1)
  AND (username <> email OR lower(email) NOT IN (SELECT username FROM users_user))
"""


class Migration(migrations.Migration):
    dependencies = [("users", "0003_write_path_indexes")]

    operations = [migrations.RunSQL(LOWER, reverse_sql=migrations.RunSQL.noop)]
