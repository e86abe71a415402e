-- Who created each API key, kept after they leave: `created_by` is set
-- null when the person is removed, the email stays, so the members page can
-- offer to revoke the keys of people who left.
alter table api_keys add column created_by_email text
    check (created_by_email is null or length(created_by_email) between 3 and 254);
update api_keys k set created_by_email = u.email from users u where u.id = k.created_by;
